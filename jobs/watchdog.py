"""Scheduled jobs are never stranded.

RQ keeps each queue's delayed jobs (retries, delays, EAS polls, rate-limited waits) in a
scheduled registry, promoted when due by one scheduler process per queue that a worker
starts under a lock. The lock outlives a killed scheduler by a minute, and RQ looks for a
dead scheduler only every ten minutes. So ConveyorWorker restarts its own scheduler process
within a heartbeat when it dies, and starts one as soon as a queue's lock is free; and this
watchdog, run by one worker's heartbeat at a time (under a short lock) and by every
`rqscheduler` tick, promotes any job overdue by more than SCHEDULED_OVERDUE_GRACE seconds,
says so in the log, and frees the lock of a scheduler that stopped beating so that a live
worker takes its place.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from rq import Queue, Worker, worker_registration
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.utils import now, utcparse

from .connection import key

log = logging.getLogger("conveyor.watchdog")

TURN_KEY = key("scheduled-watchdog")
# Jobs promoted per queue and turn; more wait for the next turn, a heartbeat later.
BATCH = 200


def take_turn(pipeline, owner, seconds):
    """Queue on `pipeline` a bid for the next `seconds` of watching; its reply is True when won.
    Many workers beat at once: one of them is enough."""
    pipeline.set(TURN_KEY, owner, nx=True, px=max(1, int(seconds * 1000)))


def promote_overdue(connection, queue_names=None):
    """Promote the jobs due more than SCHEDULED_OVERDUE_GRACE seconds ago that no scheduler
    promoted, and free the locks of schedulers that stopped beating. Returns the job ids."""
    names = list(queue_names or settings.QUEUE_POLICIES)
    cutoff = time.time() - settings.SCHEDULED_OVERDUE_GRACE
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zrangebyscore(registry_key(name), 0, cutoff, start=0, num=BATCH)
        overdue = pipe.execute()
    promoted = []
    for name, job_ids in zip(names, overdue):
        if job_ids:
            promoted += promote(connection, name, [job_id.decode() for job_id in job_ids])
            free_stale_scheduler_lock(connection, name)
    return promoted


def registry_key(queue_name):
    return ScheduledJobRegistry.key_template.format(queue_name)


def promote(connection, queue_name, job_ids):
    """Enqueue the jobs that this call removes from the scheduled registry. The ZREM decides:
    of two watchdogs, or a watchdog and a late scheduler, one promotes each job."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.zrem(registry_key(queue_name), job_id)
        ours = [job_id for job_id, removed in zip(job_ids, pipe.execute()) if removed]
    jobs = [job for job in Job.fetch_many(ours, connection=connection) if job is not None]
    queue = Queue(queue_name, connection=connection)
    with connection.pipeline() as pipe:
        for job in jobs:
            log.warning("job %s on %s was due and no scheduler promoted it: the watchdog did", job.id, queue_name)
            if job.has_rate_limit:
                queue._enqueue_rate_limited_job(job, pipeline=pipe, at_front=job.should_enqueue_at_front())
            else:
                queue._enqueue_job(job, pipeline=pipe, at_front=job.should_enqueue_at_front())
        pipe.execute()
    return [job.id for job in jobs]


def free_stale_scheduler_lock(connection, queue_name):
    """Delete the queue's scheduler lock if its holder has not beaten for the grace period:
    a worker's heartbeat then finds it free and starts a scheduler of its own."""
    lock = RQScheduler.get_locking_key(queue_name)
    holder = connection.get(lock)
    if holder is None or scheduler_is_beating(connection, holder.decode()):
        return False
    freed = release_lock(connection, lock, holder.decode())
    if freed:
        log.warning("the scheduler of %s stopped beating: its lock is freed for another worker", queue_name)
    return freed


def scheduler_is_beating(connection, scheduler_name):
    beat = connection.hget(SCHEDULER_KEY_TEMPLATE % scheduler_name, "last_heartbeat")
    if beat is None:
        return False
    return now() - utcparse(beat.decode()) < timedelta(seconds=settings.SCHEDULED_OVERDUE_GRACE)


def forget_dead_workers(connection, live_workers_key):
    """Unregister the workers that stopped beating: a worker killed with SIGKILL says no
    goodbye, and RQ would list it for minutes (its hash lives worker_ttl, and RQ prunes its
    sets every ten minutes). So django-rq's dashboard counts the workers that are really
    there within WORKER_ALIVE_TTL. Returns the names forgotten."""
    alive = {name.decode() for name in connection.zrangebyscore(live_workers_key, time.time(), "+inf")}
    registered = [member.decode() for member in connection.smembers(worker_registration.REDIS_WORKER_KEYS)]
    gone = [worker_key for worker_key in registered if worker_name(worker_key) not in alive]
    forgotten = [worker_key for worker_key in gone if silent_long_enough(connection, worker_key)]
    if forgotten:
        unregister(connection, forgotten)
        log.warning(
            "workers gone without a goodbye (killed?), no longer listed: %s", ", ".join(map(worker_name, forgotten))
        )
    return [worker_name(worker_key) for worker_key in forgotten]


def worker_name(worker_key):
    return worker_key.removeprefix(Worker.redis_worker_namespace_prefix)


def silent_long_enough(connection, worker_key):
    """A worker registers itself a moment before its first beat: spare the newborn."""
    birth = connection.hget(worker_key, "birth")
    return birth is None or now() - utcparse(birth.decode()) > timedelta(seconds=settings.WORKER_ALIVE_TTL)


def unregister(connection, worker_keys):
    queue_sets = [worker_registration.WORKERS_BY_QUEUE_KEY % name for name in settings.QUEUE_POLICIES]
    with connection.pipeline() as pipe:
        pipe.srem(worker_registration.REDIS_WORKER_KEYS, *worker_keys)
        for queue_set in queue_sets:
            pipe.srem(queue_set, *worker_keys)
        pipe.delete(*worker_keys)
        pipe.execute()
