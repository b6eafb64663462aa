"""Operator actions on queues. The database records pauses; Redis mirrors them."""

from django.db import transaction
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from core.errors import ServiceError

from . import lifecycle, pausing, ratelimit, retention
from .connection import ensure_available
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
        "rate_limit": None,
    }
    if policy.rate_limit:
        log_key = ratelimit.limiter_key(policy.name)
        stat["rate_limit"] = {
            "starts": policy.rate_limit.starts,
            "per_seconds": policy.rate_limit.per_seconds,
            "in_window": ratelimit.starts_in_window(policy.rate_limit, log_key),
        }
    return stat


def queue_cleanup():
    ensure_available()
    return retention.trim_all()


def queue_requeue_failed(*, name):
    """Put every failed job of the queue back on it, each row reopened. Returns how many."""
    require_queue(name)
    ensure_available()
    return lifecycle.requeue_failed(name)
