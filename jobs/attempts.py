"""Every job attempt of a domain row, on record (jobs.models.Attempt), logged and counted.

The lifecycle opens an attempt when a job starts on a row (`begin`) and closes it when the
job ends (`Running.end`): its start is kept in memory meanwhile, so an attempt costs one
INSERT, a few commands in RQ's last pipeline of the job for the metrics (jobs.metrics) and
two log lines. What the
body did decides the outcome: the lifecycle's own steps `note` it (succeeded, continued,
waiting); an error decides it otherwise (retrying, failed). A worker killed mid-job writes
nothing: the reconciler records that attempt as `lost` when it resumes the row
(`record_lost`). Attempts older than ATTEMPTS_KEPT_DAYS are pruned hourly (`prune`).
"""

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from . import metrics
from .models import Attempt
from .scheduling import Periodic

log = logging.getLogger("conveyor.jobs")

Outcome = Attempt.Outcome
ERROR_LIMIT = Attempt._meta.get_field("error").max_length
# The API and the admin show a row's newest attempts (a publishing polls its build for hours).
SHOWN = 50
PRUNE_BATCH = 5000
PRUNE_PREFIX = "conveyor-attempts-"

# Each event's log level: a retry or a failure is worth a warning.
EVENT_LEVELS = {"start": logging.INFO, "end": logging.INFO, "retry": logging.WARNING, "fail": logging.WARNING}
EVENT_OF_OUTCOME = {Outcome.RETRYING: "retry", Outcome.FAILED: "fail", Outcome.LOST: "fail"}

_current: ContextVar["Running | None"] = ContextVar("conveyor_attempt", default=None)


@dataclass
class Running:
    """An attempt under way, in memory until it ends."""

    kind: object  # lifecycle.Kind
    row_id: int
    job: object  # rq.job.Job
    started_at: object
    number: int
    clock: float = field(default_factory=time.monotonic)
    outcome: str = Outcome.NOTHING_TO_DO  # until the lifecycle's steps say otherwise
    counts: dict = field(default_factory=dict)
    on_record: bool = False  # written already, with the row's success (record_success)

    def fields(self):
        return job_fields(self.job, self.kind.label, self.row_id, self.number)

    def end(self, outcome=None, error=""):
        """Close the attempt: on record, counted, logged. Never raises."""
        _current.set(None)
        outcome = outcome or self.outcome
        seconds = time.monotonic() - self.clock
        if not self.on_record:
            save(self.kind.model, self.row_id, self.job, self.number, self.started_at, outcome, error)
        metrics.attempt_ended(self.kind.label, outcome, seconds, self.counts, job=self.job)
        log_event(EVENT_OF_OUTCOME.get(outcome, "end"), self.fields(), outcome=outcome, duration=seconds, error=error)


def begin(kind, row_id, job):
    """Open the attempt of `job` on the row, and say so in the log."""
    started_at = job.started_at or timezone.now()  # RQ's: the reconciler reads the same one
    running = Running(kind, row_id, job, started_at, number=try_number(job))
    _current.set(running)
    log_event("start", running.fields())
    return running


def current(job_id):
    """The attempt under way of the job `job_id` in this process, or None."""
    running = _current.get()
    return running if running is not None and running.job.id == job_id else None


def note(job_id, outcome):
    """The lifecycle did something that decides how the job's attempt ends."""
    running = current(job_id)
    if running is not None:
        running.outcome = outcome


def record_success(job_id, model, row_id):
    """The row succeeded: its attempt goes on record in the same transaction (one commit
    for both), and is not written again when it ends. Rolled back, it is written then."""
    running = current(job_id)
    if running is None:
        return
    running.outcome = Outcome.SUCCEEDED
    write(model, row_id, running.job, running.number, running.started_at, Outcome.SUCCEEDED)
    transaction.on_commit(lambda: setattr(running, "on_record", True))


def renumber(job):
    """The job was requeued and got its retries back: its tries count from 1 again, as its
    row's attempts do."""
    running = current(job.id)
    if running is not None:
        running.number = try_number(job)


def count(job_id, counts):
    """Counters to add when the job's attempt ends (with its other counters)."""
    running = current(job_id)
    if running is None:
        metrics.add(counts)
        return
    for name, amount in counts.items():
        running.counts[name] = running.counts.get(name, 0) + amount


def try_number(job):
    """1 for a job's first run, one more for each retry RQ gave it: its retries count down
    from one per retry delay."""
    if job.retries_left is None:
        return 1
    return len(job.retry_intervals or ()) - job.retries_left + 1


def write(model, row_id, job, number, started_at, outcome, error=""):
    Attempt.objects.create(
        content_type=ContentType.objects.get_for_model(model),
        object_id=row_id,
        queue=job.origin or "",
        job_id=job.id,
        number=number,
        worker=job.worker_name or "",
        started_at=started_at,
        ended_at=timezone.now(),
        outcome=outcome,
        error=error[:ERROR_LIMIT],
    )


def save(model, row_id, job, number, started_at, outcome, error=""):
    try:
        write(model, row_id, job, number, started_at, outcome, error)
    except DatabaseError:
        # The job's own outcome is already in its row; a missing record must not change it.
        log.exception("attempt of job %s on %s %s not recorded", job.id, model._meta.label, row_id)


def job_fields(job, row_kind, row_id, number):
    """A job's context, as every log line about it carries it."""
    return {"queue": job.origin, "job_id": job.id, "row_kind": row_kind, "row_id": row_id, "attempt": number}


def log_event(event, fields, **more):
    """One line per job event, its context in the message and, for LOG_FORMAT=json, as keys."""
    if more.get("duration") is not None:
        more["duration"] = round(more["duration"], 4)
    fields = {**fields, **{name: value for name, value in more.items() if value not in ("", None)}}
    text = " ".join(f"{name}={value}" for name, value in fields.items() if name != "error")
    if fields.get("error"):
        text += f": {fields['error']}"
    log.log(EVENT_LEVELS[event], "job %s %s", event, text, extra={"event": f"job_{event}", **fields})


# --- the reconciler's side ----------------------------------------------------------------


def record_lost(model, row_id, job):
    """An attempt its killed worker never closed (`job` as Redis last saw it), recorded as
    lost, once, when the reconciler resumes its row."""
    rows = Attempt.objects.filter(content_type=ContentType.objects.get_for_model(model), object_id=row_id)
    if rows.filter(job_id=job.id, started_at=job.started_at).exists():
        return  # its worker recorded it after all (it stopped on SystemExit)
    error = f"worker {job.worker_name} stopped before the job ended"
    number = try_number(job)
    save(model, row_id, job, number, job.started_at, Outcome.LOST, error)
    metrics.attempt_ended(model._meta.label, Outcome.LOST, None, {})
    log_event("fail", job_fields(job, model._meta.label, row_id, number), outcome=Outcome.LOST, error=error)


# --- reading and pruning --------------------------------------------------------------------


def newest(limit=SHOWN):
    """Attempts ranked newest first within their row, the first `limit` of each: a queryset
    for Prefetch(..., queryset=newest()), which then adds the rows it prefetches for."""
    rank = Window(
        RowNumber(),
        partition_by=[F("content_type"), F("object_id")],
        order_by=[F("started_at").desc(), F("id").desc()],
    )
    return Attempt.objects.annotate(rank=rank).filter(rank__lte=limit)


def prune():
    """Delete attempts that started more than ATTEMPTS_KEPT_DAYS days ago, a batch at a time
    (a long DELETE would hold the workers' INSERTs back). Returns how many."""
    cutoff = timezone.now() - timedelta(days=settings.ATTEMPTS_KEPT_DAYS)
    deleted = 0
    while True:
        batch = list(Attempt.objects.filter(started_at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            return deleted
        deleted += Attempt.objects.filter(pk__in=batch).delete()[0]


def housekeeping_schedules():
    """The attempts' hourly pruning, for the scheduler's sync."""
    return [Periodic(f"{PRUNE_PREFIX}prune", "jobs.jobs.attempts_prune", 3600)]
