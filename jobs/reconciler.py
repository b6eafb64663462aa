"""Re-enqueue work that the database says is unfinished but Redis no longer carries.

Apps register their row models with `track`. A row in one of its active statuses whose
job is gone (Redis flushed or restarted empty), ended without finishing the row, or is
"started" by a worker whose liveness key expired (killed with SIGKILL) is handed back to
the app's `resume` function, which enqueues the right job again. Jobs claim their rows
with conditional updates, so a job that turns out to be alive after all does no harm.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from django.conf import settings
from django.utils import timezone
from rq.job import Job

from . import pausing
from .connection import get_redis, key
from .models import PausedQueue
from .worker import alive_key

log = logging.getLogger("conveyor.reconciler")

WAITING_STATUSES = {"queued", "scheduled", "deferred", "rate_limited"}
LOCK_KEY = key("reconcile-lock")
BATCH = 500


@dataclass(frozen=True)
class Tracked:
    model: type
    active_statuses: tuple
    resume: Callable


_tracked: dict[str, Tracked] = {}


def track(model, *, active_statuses, resume):
    """Declare that rows of `model` in `active_statuses` must always have a live job.

    The model needs `job_id` and `updated_at` fields; `resume(row)` enqueues its job again.
    """
    _tracked[model._meta.label] = Tracked(model, tuple(active_statuses), resume)


def job_liveness(job_ids, connection):
    """Map each job id to True when a job exists that will still run or is running."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(Job.key_for(job_id), "status", "worker_name")
        states = pipe.execute()
    started_by = {job_id: worker.decode() for job_id, (status, worker) in zip(job_ids, states) if status == b"started" and worker}
    with connection.pipeline(transaction=False) as pipe:
        for worker in started_by.values():
            pipe.exists(alive_key(worker))
        alive = dict(zip(started_by, pipe.execute()))
    return {
        job_id: (status or b"").decode() in WAITING_STATUSES or bool(alive.get(job_id))
        for job_id, (status, _) in zip(job_ids, states)
    }


def stale_rows(tracked, grace):
    cutoff = timezone.now() - timedelta(seconds=grace)
    rows = tracked.model.objects.filter(status__in=tracked.active_statuses, updated_at__lt=cutoff)
    return list(rows.order_by("updated_at")[:BATCH])


def reconcile_model(tracked, connection, grace):
    rows = stale_rows(tracked, grace)
    liveness = job_liveness([row.job_id for row in rows if row.job_id], connection)
    resumed = 0
    for row in rows:
        if not liveness.get(row.job_id):
            log.warning("%s %s is %s with no live job (%s): enqueuing it again", tracked.model.__name__, row.pk, row.status, row.job_id or "none")
            tracked.resume(row)
            resumed += 1
    return resumed


def reconcile(grace=None):
    """Resume every tracked row without a live job. Returns how many were resumed."""
    connection = get_redis()
    if not connection.set(LOCK_KEY, "1", nx=True, ex=60):
        return 0
    try:
        pausing.mirror_to_redis(list(PausedQueue.objects.values_list("name", flat=True)), connection)
        grace = settings.RECONCILE_GRACE if grace is None else grace
        return sum(reconcile_model(tracked, connection, grace) for tracked in _tracked.values())
    finally:
        connection.delete(LOCK_KEY)
