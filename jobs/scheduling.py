"""The scheduler process (`manage.py rqscheduler`): rq-scheduler, plus periodic jobs kept in
step with the database, plus the watchdog of RQ's scheduled registries (jobs/watchdog.py).

The periodic jobs live in Redis like everything rq-scheduler keeps. The platform's own
(reconciler, cleanup) are checked on every tick; apps register providers that list
theirs from the database (one poll per enabled source), synced every
SCHEDULE_SYNC_INTERVAL seconds and at once when a row changes. So a Redis that lost its
data (FLUSHALL, a restart without persistence) gets every schedule back by itself.
rq-scheduler holds a lock while it enqueues: two schedulers never enqueue a job twice.
"""

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from croniter import croniter
from django.conf import settings
from django.db import transaction
from rq.job import Job
from rq_scheduler import Scheduler

from . import watchdog
from .connection import get_redis
from .policies import policy_for

log = logging.getLogger("conveyor.scheduler")

MAINTENANCE_QUEUE = "maintenance"


@dataclass(frozen=True)
class Periodic:
    job_id: str
    func: str
    interval: int
    queue: str = MAINTENANCE_QUEUE
    args: tuple = ()
    # A cron expression ("*/15 * * * *", UTC) replaces the interval when given.
    cron: str = ""
    # Start at a random point of the first interval, so that a restart or a sync does
    # not fire every source at once.
    jitter: bool = False


_providers = {}
_tick_hooks = []


def register(prefix, provider):
    """`provider()` lists the Periodic jobs (ids starting with `prefix`) the database wants."""
    _providers[prefix] = provider


def on_tick(hook):
    """`hook()` runs in the scheduler process on every tick: for the few checks that cannot
    wait for a worker (when none is alive, no periodic job runs). It paces itself."""
    _tick_hooks.append(hook)


def run_tick_hooks():
    for hook in _tick_hooks:
        try:
            hook()
        except (redis.ConnectionError, redis.TimeoutError):
            raise  # the scheduler waits out a Redis outage as it always does
        except Exception:
            log.exception("scheduler tick: %s failed", getattr(hook, "__qualname__", hook))


def platform_jobs():
    return [
        Periodic("conveyor-reconcile", "jobs.jobs.reconcile", settings.RECONCILE_INTERVAL),
        Periodic("conveyor-cleanup", "jobs.jobs.cleanup", settings.CLEANUP_INTERVAL),
        Periodic("conveyor-sample-queues", "jobs.jobs.sample_queues", settings.CHARTS_SAMPLE_INTERVAL),
    ]


def get_scheduler(connection=None):
    return ConveyorScheduler(
        queue_name=MAINTENANCE_QUEUE, connection=connection or get_redis(), interval=settings.SCHEDULER_INTERVAL
    )


def ensure(scheduler, periodic):
    """Schedule `periodic` unless it is already scheduled the same way."""
    if periodic.job_id in scheduler and timing_of(scheduler, periodic.job_id) == timing(periodic):
        return False
    scheduler.cancel(periodic.job_id)
    policy = policy_for(periodic.queue)
    options = {
        "args": list(periodic.args),
        "id": periodic.job_id,
        "queue_name": periodic.queue,
        "timeout": policy.timeout,
        "result_ttl": policy.finished_ttl,
        # Scheduling work is not a start the queue's rate limit should count.
        "meta": {"rate_limited": False},
    }
    if periodic.cron:
        scheduler.cron(periodic.cron, periodic.func, **options)
    else:
        scheduler.schedule(first_run(periodic), periodic.func, interval=periodic.interval, **options)
    log.info("scheduled %s: %s", periodic.job_id, timing(periodic))
    return True


def first_run(periodic):
    first = datetime.now(UTC)
    if periodic.jitter:
        first += timedelta(seconds=random.uniform(0, periodic.interval))
    return first


def timing(periodic):
    return f"cron {periodic.cron}" if periodic.cron else f"every {periodic.interval}s"


def timing_of(scheduler, job_id):
    try:
        meta = Job.fetch(job_id, connection=scheduler.connection).meta
    except Exception:
        return None
    return f"cron {meta['cron_string']}" if meta.get("cron_string") else f"every {meta.get('interval')}s"


CRON_SAMPLES = 200


def cron_problem(expression, min_interval):
    """Why a user's cron expression cannot be scheduled, or None. Five fields only (a sixth,
    seconds, would escape the minimum interval), and no two firings closer than it."""
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        return "Not a cron expression (five fields, e.g. */15 * * * *)."
    firings = croniter(expression, datetime.now(UTC))
    previous = firings.get_next(float)
    for _ in range(CRON_SAMPLES):
        following = firings.get_next(float)
        if following - previous < min_interval:
            return f"Fires more often than the minimum interval of {min_interval} seconds."
        previous = following
    return None


def unschedule(job_id, connection=None):
    get_scheduler(connection).cancel(job_id)


def sync_quietly(periodic, enabled):
    """Make one row's schedule match the row now (ensure it, or cancel it when the row is
    disabled). If Redis is down, the scheduler's next sync of the provider will."""
    try:
        if enabled:
            ensure(get_scheduler(), periodic)
        else:
            unschedule(periodic.job_id)
    except (redis.ConnectionError, redis.TimeoutError):
        log.warning("%s: schedule not updated (Redis unavailable); the scheduler's sync will", periodic.job_id)


def save_and_resync(row, periodic_of):
    """Save a row that has a schedule (`periodic_of(row)`, on while `row.enabled`); once
    the save is committed, the schedule follows it."""
    with transaction.atomic():
        row.save()
        transaction.on_commit(lambda: sync_quietly(periodic_of(row), row.enabled))
    return row


def delete_and_unschedule(row, job_id):
    """Delete a row; once that is committed, cancel its schedule `job_id`."""
    with transaction.atomic():
        row.delete()
        transaction.on_commit(lambda: unschedule_quietly(job_id))


def unschedule_quietly(job_id):
    """Cancel a deleted row's schedule; if Redis is down, the scheduler's sync will."""
    try:
        unschedule(job_id)
    except (redis.ConnectionError, redis.TimeoutError):
        log.warning("%s not unscheduled (Redis unavailable); the scheduler's sync will", job_id)


def sync_provider(scheduler, prefix, provider):
    """Make the scheduled jobs under `prefix` exactly those the provider lists."""
    wanted = {periodic.job_id: periodic for periodic in provider()}
    for periodic in wanted.values():
        ensure(scheduler, periodic)
    for raw in scheduler.connection.zrange(scheduler.scheduled_jobs_key, 0, -1):
        job_id = raw.decode()
        if job_id.startswith(prefix) and job_id not in wanted:
            scheduler.cancel(job_id)


class ConveyorScheduler(Scheduler):
    _synced_at = 0.0

    def enqueue_jobs(self):
        for periodic in platform_jobs():
            ensure(self, periodic)
        if time.monotonic() - self._synced_at >= settings.SCHEDULE_SYNC_INTERVAL:
            for prefix, provider in _providers.items():
                sync_provider(self, prefix, provider)
            self._synced_at = time.monotonic()
        watchdog.promote_overdue(self.connection)
        enqueued = super().enqueue_jobs()
        run_tick_hooks()  # after the due jobs: a hook may take a while (it may send a message)
        return enqueued
