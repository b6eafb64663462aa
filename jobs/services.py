"""Operator actions on queues. The database records pauses; Redis mirrors them."""

from django.db import transaction
from rq.job import Job
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from core.errors import ServiceError

from . import lifecycle, pausing, ratelimit, retention
from .connection import ensure_available, get_redis
from .models import PausedQueue
from .policies import all_policies, policy_for
from .queueing import get_queue


def require_queue(name):
    if name not in all_policies():
        raise ServiceError(f"Unknown queue {name!r}.", code="not_found", status_code=404)
    return policy_for(name)


def sync_paused_to_redis():
    pausing.mirror_to_redis(list(PausedQueue.objects.values_list("name", flat=True)))


@transaction.atomic
def queue_pause(*, name, by=None, reason=""):
    """Stop workers taking this queue's jobs; running jobs finish, queued ones wait."""
    require_queue(name)
    ensure_available()
    PausedQueue.objects.get_or_create(name=name, defaults={"paused_by": by, "reason": reason})
    transaction.on_commit(sync_paused_to_redis)


@transaction.atomic
def queue_resume(*, name):
    require_queue(name)
    ensure_available()
    PausedQueue.objects.filter(name=name).delete()
    transaction.on_commit(sync_paused_to_redis)


def queue_stats():
    """Counts per queue, for operators and the stats endpoint."""
    ensure_available()
    paused = set(PausedQueue.objects.values_list("name", flat=True))
    return [queue_stat(policy, paused) for policy in all_policies().values()]


def queue_stat(policy, paused):
    queue = get_queue(policy.name)
    stat = {
        "name": policy.name,
        "paused": policy.name in paused,
        "queued": queue.count,
        "started": StartedJobRegistry(queue=queue).count,
        "scheduled": ScheduledJobRegistry(queue=queue).count,
        "finished": FinishedJobRegistry(queue=queue).count,
        "failed": FailedJobRegistry(queue=queue).count,
        "retry_delays": list(policy.retry_delays),
        "keep_finished": policy.keep_finished,
        "keep_failed": policy.keep_failed,
        "rate_limit": rate_limit_use(policy),
    }
    return stat


BUSIEST_KEYS_SHOWN = 5


def rate_limit_use(policy):
    """The queue's start limit and its use now: the queue-wide window, and for limits per
    host or domain the busiest keys (and those a remote's 429 blocks). None: no limit, no block."""
    keys = ratelimit.keys_in_use(policy.name, policy.rate_limit)
    if policy.rate_limit is None and not keys:
        return None
    limit = policy.rate_limit
    return {
        "starts": limit.starts if limit else None,
        "per_seconds": limit.per_seconds if limit else None,
        "in_window": ratelimit.starts_in_window(limit, ratelimit.limiter_key(policy.name)) if limit else 0,
        "keys_in_use": len(keys),
        "busiest_keys": [
            {"key": use.rate_key, "in_window": use.in_window, "blocked_for": round(use.blocked_for, 1)}
            for use in keys[:BUSIEST_KEYS_SHOWN]
        ],
    }


def queue_cleanup():
    ensure_available()
    return retention.trim_all()


def queue_requeue_failed(*, name):
    """Put every failed job of the queue back on it, each row reopened. Returns how many."""
    require_queue(name)
    ensure_available()
    return lifecycle.requeue_failed(name)


def failed_jobs_requeue(*, job_ids):
    """Requeue these failed jobs through the row lifecycle: each row reopens (queued, a fresh
    attempt count) and its job runs again. Returns how many were requeued; a job no longer
    failed (requeued or deleted meanwhile) is skipped."""
    ensure_available()
    jobs = [job for job in Job.fetch_many(list(job_ids), connection=get_redis()) if job is not None]
    return sum(lifecycle.requeue(lifecycle.kind_of_job(job), job) for job in jobs if is_failed(job))


def failed_jobs_delete(*, job_ids):
    """Delete these failed jobs from RQ (the job, its registry entry, its results). Their rows
    stay failed: the row, not Redis, is the record. Returns how many were deleted."""
    ensure_available()
    jobs = [job for job in Job.fetch_many(list(job_ids), connection=get_redis()) if job is not None]
    failed = [job for job in jobs if is_failed(job)]
    with get_redis().pipeline() as pipe:
        for job in failed:
            job.delete(pipeline=pipe)
        pipe.execute()
    return len(failed)


def is_failed(job):
    return job.id in FailedJobRegistry(queue=get_queue(job.origin))
