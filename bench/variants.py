"""The ways a job can run, each started the same way: workers, then `enqueue(job)`.

- platform: jobs.queueing.enqueue (policy: retries, TTLs) and `manage.py conveyor_worker`
  (a pool of ConveyorWorker, SimpleWorker's subclass);
- rq-simple: plain rq.Queue.enqueue and `rq worker-pool -w rq.worker.SimpleWorker`;
- rq-fork: RQ's default forking Worker, for reference;
- celery: Celery's prefork pool, results ignored, on a Redis broker.
"""

import sys
from dataclasses import dataclass
from typing import Callable

from bench import tasks
from bench.common import BASE_DIR, python

PLATFORM_QUEUE = "notifications"
RAW_QUEUE = "bench-raw"


@dataclass
class Variant:
    name: str
    workers: Callable  # (env, processes) -> [argv, ...]
    enqueuer: Callable  # (env, job name) -> a function that enqueues one such job


def platform_workers(env, processes):
    return [python("manage.py", "conveyor_worker", "--processes", str(processes), PLATFORM_QUEUE)]


def platform_enqueuer(env, job_name):
    from jobs.queueing import enqueue

    job = getattr(tasks, job_name)
    return lambda: enqueue(job, queue=PLATFORM_QUEUE)


def rq_workers(worker_class):
    def workers(env, processes):
        rq_cli = str(BASE_DIR / ".venv" / "bin" / "rq") if (BASE_DIR / ".venv").exists() else "rq"
        return [[rq_cli, "worker-pool", RAW_QUEUE, "-n", str(processes), "-w", worker_class, "-u", env["REDIS_URL"], "-q"]]

    return workers


def rq_enqueuer(env, job_name):
    import redis
    from rq import Queue

    queue = Queue(RAW_QUEUE, connection=redis.Redis.from_url(env["REDIS_URL"]))
    job = getattr(tasks, job_name)
    return lambda: queue.enqueue(job)


def celery_workers(env, processes):
    return [
        [
            sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker", "--pool", "prefork",
            "--concurrency", str(processes), "-Q", "bench", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "WARNING",
        ]
    ]


def celery_enqueuer(env, job_name):
    from bench import celery_app

    task = getattr(celery_app, job_name)
    return task.delay


VARIANTS = {
    "platform": Variant("platform", platform_workers, platform_enqueuer),
    "rq-simple": Variant("rq-simple", rq_workers("rq.worker.SimpleWorker"), rq_enqueuer),
    "rq-fork": Variant("rq-fork", rq_workers("rq.worker.Worker"), rq_enqueuer),
    "celery": Variant("celery", celery_workers, celery_enqueuer),
}
