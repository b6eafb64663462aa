"""The ways a job can run, each started the same way: workers first, then jobs.

- platform: jobs.queueing.enqueue (the queue's policy: retries, TTLs) and
  `manage.py rqworker-pool --num-workers P` (rq's WorkerPool of ConveyorWorker, a
  SimpleWorker subclass), the queue's concurrency cap raised above P (still checked);
- rq-simple: plain rq.Queue.enqueue and `rq worker-pool -w rq.worker.SimpleWorker`
  (the same pool, RQ's own worker class);
- rq-fork: RQ's default Worker, which forks a work horse per job, for reference;
- celery / celery-strict: Celery's prefork pool on a Redis broker (bench/celery_app.py
  says what differs between the two).
"""

import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench import tasks
from bench.common import BASE_DIR, python, running, wait_until

# No rate limit on it; its policy (retries, TTLs, a concurrency cap) is what the platform adds per job.
PLATFORM_QUEUE = "notifications"
# Its cap (1) would serialise the pool: raised for the benchmark, checked per job all the same.
PLATFORM_ENV = {"CONVEYOR_QUEUE_NOTIFICATIONS_JSON": '{"concurrency": 1000}'}
RAW_QUEUE = "bench-raw"
START_TIMEOUT = 60


@dataclass
class Variant:
    name: str
    workers: Callable  # (env, processes) -> [argv, ...]
    enqueuer: Callable  # (job name) -> a function that enqueues one such job: f(*args)
    env: dict = field(default_factory=dict)  # added to the workers' environment


def platform_workers(env, processes):
    return [python("manage.py", "rqworker-pool", "--num-workers", str(processes), PLATFORM_QUEUE)]


def platform_enqueuer(job_name):
    from jobs.queueing import enqueue

    job = getattr(tasks, job_name)
    return lambda *args: enqueue(job, *args, queue=PLATFORM_QUEUE)


def rq_workers(worker_class):
    def workers(env, processes):
        rq_cli = str(BASE_DIR / ".venv" / "bin" / "rq") if (BASE_DIR / ".venv").exists() else "rq"
        # -q: warnings only, as the platform's workers log (no line per job).
        return [
            [rq_cli, "worker-pool", RAW_QUEUE, "-n", str(processes), "-w", worker_class, "-u", env["REDIS_URL"], "-q"]
        ]

    return workers


def rq_enqueuer(job_name):
    from rq import Queue

    queue = Queue(RAW_QUEUE, connection=tasks.client())
    job = getattr(tasks, job_name)
    return lambda *args: queue.enqueue(job, *args)


def celery_workers(env, processes):
    return [
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(processes),
            "-Q",
            "bench",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ]
    ]


def celery_enqueuer(store_result):
    def enqueuer(job_name):
        from bench import celery_app

        task = getattr(celery_app, job_name)
        # Said in each message, because the sending app here has no result backend.
        return lambda *args: task.apply_async(args, ignore_result=not store_result)

    return enqueuer


VARIANTS = {
    "platform": Variant("platform", platform_workers, platform_enqueuer, env=PLATFORM_ENV),
    "rq-simple": Variant("rq-simple", rq_workers("rq.worker.SimpleWorker"), rq_enqueuer),
    "rq-fork": Variant("rq-fork", rq_workers("rq.worker.Worker"), rq_enqueuer),
    "celery": Variant("celery", celery_workers, celery_enqueuer(store_result=False)),
    "celery-strict": Variant(
        "celery-strict", celery_workers, celery_enqueuer(store_result=True), env={"BENCH_CELERY_STRICT": "1"}
    ),
}


@contextmanager
def held_workers(variant, env, processes):
    """Run the variant's workers; yield their processes once every worker is busy in a
    `hold` job.

    Nothing runs until the caller calls open_gate(processes); leaving the block opens
    it too, so that the workers stop at once instead of waiting out their hold.
    """
    tasks.client().flushall()
    with running(variant.workers(env, processes), {**env, **variant.env}) as started:
        try:
            hold = variant.enqueuer("hold")
            for _ in range(processes):
                hold()
            wait_until(
                lambda: holding(started) >= processes,
                timeout=START_TIMEOUT,
                interval=0.05,
                what=f"{processes} {variant.name} workers to start",
            )
            yield started
        finally:
            open_gate(processes)


def holding(started):
    if any(process.poll() is not None for process in started):
        raise RuntimeError("a worker process exited during start-up")
    return int(tasks.client().get(tasks.HOLDING) or 0)


def open_gate(processes):
    tasks.client().rpush(tasks.GATE, *["go"] * processes)
