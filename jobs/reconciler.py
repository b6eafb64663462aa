"""Re-enqueue work that the database says is unfinished but Redis no longer carries.

Apps register their row models with `track`. A row in one of its active statuses whose
job is gone (Redis flushed or restarted empty), ended without finishing the row, or is
"started" by a worker whose liveness key expired (killed with SIGKILL) is handed back to
the app's `resume` function, which enqueues the right job again. So is a row whose job is
stranded: "queued", yet not in its queue, because a worker popped it and died before
starting it (a worker on several queues pops with BLPOP, which leaves no trace; on one,
into the queue's intermediate list, where RQ would fail it only at its next maintenance,
minutes later). Jobs claim their rows with conditional updates, so a job that turns out
to be alive after all does no harm.
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
from .worker import alive_key, unseen_key

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
    stranded: bool = False  # "queued", but a worker popped it and died (stranded_jobs)

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


def queue_key(origin):
    return f"{Queue.redis_queue_namespace_prefix}{origin}"


def stranded_jobs(states, connection):
    """The queued jobs that no worker will ever take: missing from their queue on two
    passes further apart than a live worker takes to start a job it popped
    (WORKER_ALIVE_TTL). The first miss starts the clock; a job popped and put back (at its
    queue's cap) stops it (ConveyorWorker._forget_dequeue). A job taken for stranded by
    mistake does no harm: its row's new job claims the row, the old one finds it taken."""
    queued = {job_id: state.origin for job_id, state in states.items() if state.status == "queued" and state.origin}
    missing = not_waiting(queued, connection)
    if not missing:
        return []
    now = connection.time()[0]
    remember = settings.WORKER_ALIVE_TTL + 2 * settings.RECONCILE_INTERVAL
    with connection.pipeline(transaction=False) as pipe:
        for job_id in missing:
            pipe.set(unseen_key(job_id), now, nx=True, ex=remember)
            pipe.get(unseen_key(job_id))
        replies = pipe.execute()[1::2]
    return [job_id for job_id, since in zip(missing, replies) if since and now - int(since) > settings.WORKER_ALIVE_TTL]


def not_waiting(origins, connection):
    """The jobs of `origins` ({job id: its queue}) missing from their queue's list. (A job
    parked in a schedule, rate-limited or delayed, says "scheduled", not "queued".)"""
    in_queues = set()
    for origin in set(origins.values()):
        in_queues |= queued_ids(origin, connection)
    return [job_id for job_id in origins if job_id not in in_queues]


def queued_ids(origin, connection, chunk=10_000):
    """Every job id in the queue's list, read a chunk at a time (Redis serves others between)."""
    ids, start = set(), 0
    while True:
        page = connection.lrange(queue_key(origin), start, start + chunk - 1)
        ids.update(job_id.decode() for job_id in page)
        if len(page) < chunk:
            return ids
        start += chunk


def drop_stranded(job_id, origin, connection):
    """Forget a stranded job, out of its queue's intermediate list too: its row gets a new
    job, and RQ's cleanup would otherwise fail it there, a failure that never happened."""
    popped = IntermediateQueue(queue_key(origin), connection)
    with connection.pipeline(transaction=False) as pipe:
        pipe.lrem(popped.key, 1, job_id)
        pipe.delete(popped.get_first_seen_key(job_id), unseen_key(job_id), Job.key_for(job_id))
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
