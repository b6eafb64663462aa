"""Re-enqueue work that the database says is unfinished but Redis no longer carries.

Apps register their row models with `track`. A row in one of its active statuses whose
job is gone (Redis flushed or restarted empty), ended without finishing the row, or is
"started" by a worker whose liveness key expired (killed with SIGKILL) is handed back to
the app's `resume` function, which enqueues the right job again. Jobs claim their rows
with conditional updates, so a job that turns out to be alive after all does no harm.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
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
    pending: Q
    resume: Callable
    job_field: str = "job_id"


_tracked: dict[str, Tracked] = {}


def track(model, *, resume, active_statuses=None, pending=None, job_field="job_id", name=None):
    """Declare that rows of `model` that are pending must always have a live job.

    Pending means in one of `active_statuses`, or matching the Q object `pending`. The
    model needs `updated_at` and the job id field; `resume(row)` enqueues its job again.
    """
    condition = pending if pending is not None else Q(status__in=list(active_statuses))
    _tracked[name or model._meta.label] = Tracked(model, condition, resume, job_field)


def job_liveness(job_ids, connection):
    """Map each job id to True when a job exists that will still run or is running."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(Job.key_for(job_id), "status", "worker_name")
        states = pipe.execute()
    started_by = {
        job_id: worker.decode() for job_id, (status, worker) in zip(job_ids, states) if status == b"started" and worker
    }
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
    rows = tracked.model.objects.filter(tracked.pending, updated_at__lt=cutoff)
    return list(rows.order_by("updated_at")[:BATCH])


def reconcile_model(tracked, connection, grace):
    rows = stale_rows(tracked, grace)
    job_ids = {row.pk: getattr(row, tracked.job_field) for row in rows}
    liveness = job_liveness([job_id for job_id in job_ids.values() if job_id], connection)
    resumed = 0
    for row in rows:
        job_id = job_ids[row.pk]
        if not liveness.get(job_id):
            log.warning(
                "%s %s has no live job (%s): enqueuing it again", tracked.model.__name__, row.pk, job_id or "none"
            )
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
