"""Re-enqueue work that the database says is unfinished but Redis no longer carries.

Apps register their row models with `track`. A row in one of its active statuses whose
job is gone (Redis flushed or restarted empty), ended without finishing the row, or is
"started" by a worker whose liveness key expired (killed with SIGKILL) is handed back to
the app's `resume` function, which enqueues the right job again. So is a row whose job is
stranded: popped into its queue's intermediate list by a worker that died before starting
it (RQ would fail it there only at its next maintenance, minutes later). Jobs claim their rows
with conditional updates, so a job that turns out to be alive after all does no harm.
A job that a dead worker had started (or that RQ failed as abandoned) was an attempt cut
short: the app's `lost` function puts it on record once its row is resumed.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.queue import Queue

from . import metrics, pausing
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
    lost: Callable | None = None


_tracked: dict[str, Tracked] = {}


def track(model, *, resume, active_statuses=None, pending=None, job_field="job_id", name=None, lost=None):
    """Declare that rows of `model` that are pending must always have a live job.

    Pending means in one of `active_statuses`, or matching the Q object `pending`. The
    model needs `updated_at` and the job id field; `resume(row)` enqueues its job again
    (False: it did not, the row moved on). `lost(row, job)`, when given, records the
    attempt of a job cut short, after its row was resumed.
    """
    condition = pending if pending is not None else Q(status__in=list(active_statuses))
    _tracked[name or model._meta.label] = Tracked(model, condition, resume, job_field, lost)


@dataclass(frozen=True)
class JobState:
    """What Redis says of a row's job."""

    status: str = ""
    worker: str = ""
    started_at: str = ""
    origin: str = ""
    worker_alive: bool = False
    stranded: bool = False  # "queued", in its queue's intermediate list since a worker died

    @property
    def alive(self):
        """It will still run, or is running."""
        if self.stranded:
            return False
        return self.status in WAITING_STATUSES or (self.status == "started" and self.worker_alive)

    @property
    def cut_short(self):
        """A worker started it and died before it ended (RQ may since have failed it as abandoned)."""
        return bool(self.worker and self.started_at) and self.status in ("started", "failed") and not self.alive


def job_states(job_ids, connection):
    """Map each job id to its JobState (an empty one when the job is gone)."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(Job.key_for(job_id), "status", "worker_name", "started_at", "origin")
        replies = pipe.execute()
    states = {
        job_id: JobState(*((value or b"").decode() for value in reply)) for job_id, reply in zip(job_ids, replies)
    }
    started = [job_id for job_id, state in states.items() if state.status == "started" and state.worker]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in started:
            pipe.exists(alive_key(states[job_id].worker))
        for job_id, alive in zip(started, pipe.execute()):
            states[job_id] = replace(states[job_id], worker_alive=bool(alive))
    for job_id in stranded_jobs(states, connection):
        states[job_id] = replace(states[job_id], stranded=True)
    return states


def intermediate_queue(origin, connection):
    return IntermediateQueue(f"{Queue.redis_queue_namespace_prefix}{origin}", connection)


def stranded_jobs(states, connection):
    """The queued jobs that have sat in their queue's intermediate list for longer than a
    live worker takes to start a job it popped (WORKER_ALIVE_TTL): their worker died in
    between. The first time one is seen there, the clock starts (RQ's own first-seen key)."""
    queued = [job_id for job_id, state in states.items() if state.status == "queued" and state.origin]
    lists = {job_id: intermediate_queue(states[job_id].origin, connection) for job_id in queued}
    with connection.pipeline(transaction=False) as pipe:
        for job_id in queued:
            pipe.lpos(lists[job_id].key, job_id)
        popped = [job_id for job_id, position in zip(queued, pipe.execute()) if position is not None]
    stranded = []
    for job_id in popped:
        first_seen = lists[job_id].get_first_seen(job_id)
        if first_seen is None:
            lists[job_id].set_first_seen(job_id)
        elif (timezone.now() - first_seen).total_seconds() > settings.WORKER_ALIVE_TTL:
            stranded.append(job_id)
    return stranded


def drop_stranded(job_id, origin, connection):
    """Take a stranded job out of its intermediate list, and forget it: its row has a new
    job, and RQ's cleanup would otherwise fail it there, a failure that never happened."""
    popped = intermediate_queue(origin, connection)
    with connection.pipeline(transaction=False) as pipe:
        pipe.lrem(popped.key, 1, job_id)
        pipe.delete(popped.get_first_seen_key(job_id), Job.key_for(job_id))
        pipe.execute()


def stale_batches(tracked, grace):
    """Every pending row untouched for `grace` seconds, oldest first, BATCH rows at a time.

    All of them, not the oldest batch alone: a backlog of rows whose jobs wait in a queue
    (rate-limited, paused) is alive, and would otherwise hide a newer row whose worker was
    killed until the backlog drained."""
    cutoff = timezone.now() - timedelta(seconds=grace)
    rows = tracked.model.objects.filter(tracked.pending, updated_at__lt=cutoff).order_by("updated_at", "pk")
    batch = list(rows[:BATCH])
    while batch:
        yield batch
        last = batch[-1]
        after_last = Q(updated_at__gt=last.updated_at) | Q(updated_at=last.updated_at, pk__gt=last.pk)
        batch = list(rows.filter(after_last)[:BATCH])


def reconcile_model(tracked, connection, grace):
    return sum(reconcile_batch(tracked, connection, rows) for rows in stale_batches(tracked, grace))


def reconcile_batch(tracked, connection, rows):
    job_ids = {row.pk: getattr(row, tracked.job_field) for row in rows}
    states = job_states([job_id for job_id in job_ids.values() if job_id], connection)
    resumed = 0
    for row in rows:
        job_id = job_ids[row.pk]
        state = states.get(job_id, JobState())
        if state.alive:
            continue
        why = "stranded by a dead worker" if state.stranded else "no live job"
        log.warning("%s %s: %s (%s): enqueuing it again", tracked.model.__name__, row.pk, why, job_id or "none")
        if state.stranded:
            drop_stranded(job_id, state.origin, connection)
        if tracked.resume(row) is False:
            continue  # the row moved on meanwhile
        if tracked.lost and state.cut_short:
            record_lost(tracked, row, job_id, connection)
        resumed += 1
    return resumed


def record_lost(tracked, row, job_id, connection):
    """Put the attempt a dead worker cut short on record, as Redis last saw its job."""
    job = Job.fetch_many([job_id], connection=connection)[0]
    if job is not None and job.started_at:
        tracked.lost(row, job)


def reconcile(grace=None):
    """Resume every tracked row without a live job. Returns how many were resumed."""
    connection = get_redis()
    if not connection.set(LOCK_KEY, "1", nx=True, ex=60):
        return 0
    try:
        pausing.mirror_to_redis(list(PausedQueue.objects.values_list("name", flat=True)), connection)
        grace = settings.RECONCILE_GRACE if grace is None else grace
        resumed = {name: reconcile_model(tracked, connection, grace) for name, tracked in _tracked.items()}
        for name, count in resumed.items():
            if count:
                metrics.reconciler_resumed(name, count)
        return sum(resumed.values())
    finally:
        connection.delete(LOCK_KEY)
