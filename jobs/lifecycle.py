"""The life of a row that jobs carry out, in one vocabulary for every kind of row.

A row (a publishing, a fetch, a user action, a rule run, an alert delivery) names the one
job allowed to work on it: `job_id`. That job

- **claims** the row with a conditional update on its job id and a waiting status, and
  counts the attempt; a job that finds nothing to claim (a duplicate, a stale job) does
  nothing;
- **hands it over** to a new job for a next step or a later try (a build poll, a 429's
  wait), again only while it holds the row;
- **succeeds**; or, on a transient error, puts the row back to wait and raises, so that
  RQ retries the job after the queue's next delay; on its last try, or on a permanent
  error, **fails** the row for good: the row says failed with its error, and the job fails
  too (RowFailed, no retry left), so RQ's failed registry shows every failed row.

Requeue means "try this row again": a failed job that runs again (the django-rq
dashboard's requeue, the queues API, the admin's Retry) **reopens** its row with a fresh
attempt count; a row that has since succeeded is left alone. The reconciler **resumes**
rows whose job was lost (jobs.reconciler), through `resume` below.

Every run of a job on a row is an attempt on record (jobs.attempts): when and where it ran
and how it ended, one log line as it starts and one as it ends, and the metrics it adds.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rq import get_current_job
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from core.errors import ServiceError
from core.failures import ExplainedError

from . import attempts, metrics, reconciler
from .connection import ensure_available, get_redis
from .policies import policy_for
from .queueing import enqueue, enqueue_many, get_queue

log = logging.getLogger("conveyor.jobs")

ERROR_LIMIT = 2000


class PermanentFailure(Exception):
    """Retrying will not help: fail the row at once, writing `changes` too. `counted`: it
    counts towards the row's owner's failure streak (a source's fetches, a rule's errors)."""

    def __init__(self, message, *, counted=True, **changes):
        super().__init__(message)
        self.counted = counted
        self.changes = changes


class RowFailed(Exception):
    """Raised by a job whose row failed for good, so that the job fails as well: RQ's
    failed registry then holds it, with the row's error as the exception's message."""


@dataclass(frozen=True)
class Kind:
    """What the lifecycle needs to know about one kind of row."""

    model: type
    queue: str
    func: str  # the job, by dotted path
    claimable: tuple = ("queued",)  # statuses a job may claim the row in
    running: str | None = "running"  # the status a claim moves the row to; None keeps it
    succeeded: str = "succeeded"
    failed: str = "failed"
    error_field: str = "last_error"
    finished_field: str = "finished_at"
    counts_attempts_on_claim: bool = True
    started_field: str | None = None  # set when a job claims the row
    related: tuple = ()  # select_related of the claimed row
    # row -> enqueue options (rate_key, rate_limited, at_front, delay, description)
    job_options: Callable = field(default=lambda row: {})
    # row -> changes that set a failed row up to be tried again (besides a fresh count)
    reopened: Callable = field(default=lambda row: {"status": "queued"})
    # row -> changes when a lost job is replaced (reconciler)
    resumed: Callable = field(default=lambda row: {"status": "queued"})
    # (row, message) -> None: a counted failure, for the owner's streak
    on_failed: Callable | None = None
    # changes of a success -> {metrics counter: amount} it adds (posts ingested, rule changes)
    counts: Callable | None = None

    @property
    def label(self):
        return self.model._meta.label

    @property
    def active(self):
        return tuple(self.model.ACTIVE_STATUSES)


_kinds: dict[str, Kind] = {}


def register(kind):
    """Declare a kind of row; the reconciler then keeps each of its active rows with a live job."""
    _kinds[kind.func] = kind
    reconciler.track(
        kind.model,
        active_statuses=kind.active,
        resume=lambda row: resume(kind, row),
        lost=lambda row, job: attempts.record_lost(kind.model, row.pk, job),
    )
    return kind


def kinds():
    """Every kind of row declared."""
    return list(_kinds.values())


def kind_of_job(job):
    """The kind whose job `job` is, or None (the platform's own jobs, schedules)."""
    return _kinds.get(job.func_name)


# --- starting work ------------------------------------------------------------------------


def enqueue_for(kind, row, **options):
    """Enqueue the row's job (on commit) and return its id; `options` override the kind's."""
    return enqueue(kind.func, row.pk, queue=kind.queue, **{**kind.job_options(row), **options})


def start(kind, row, **options):
    """Save a new row and give it its first job, pushed once the row is committed.

    A new row is inserted with its job's id, chosen first: one statement, which commits on
    its own outside a transaction (no BEGIN and COMMIT round trips), and the job is pushed
    right after it. A row saved before gets its job id and the job in one transaction, so
    that no worker can take the job before the row names it."""
    job_id = uuid.uuid4().hex
    if row.pk is None and not options.get("dedupe_key"):
        row.job_id = job_id
        row.save()
        enqueue_for(kind, row, job_id=job_id, **options)
        return row
    with transaction.atomic():
        if row.pk is None:
            row.save()
        row.job_id = enqueue_for(kind, row, job_id=job_id, **options)  # None: deduplicated away
        kind.model.objects.filter(pk=row.pk).update(job_id=row.job_id)
    return row


def start_many(kind, rows):
    """Give saved rows their first jobs, all pushed in one Redis round trip on commit."""
    calls = [((row.pk,), kind.job_options(row)) for row in rows]
    with transaction.atomic():
        for row, job_id in zip(rows, enqueue_many(kind.func, calls, queue=kind.queue)):
            row.job_id = job_id
        kind.model.objects.bulk_update(rows, ["job_id"])
    return rows


def held(kind, row_id, job_id):
    return kind.model.objects.filter(pk=row_id, job_id=job_id)


def update(kind, row, holder, /, **changes):
    """Write `changes` if the job `holder` still holds the row. True if it did."""
    return held(kind, row.pk, holder).update(updated_at=timezone.now(), **changes) == 1


def hand_over(kind, row, from_job, *, options=None, **changes):
    """Give the row to a new job if `from_job` still holds it, writing `changes`. The new
    job is pushed on commit, so a row that moved on meanwhile never gets it. True if done."""
    with transaction.atomic():
        new_job = enqueue_for(kind, row, **(options or {}))
        if not update(kind, row, from_job, job_id=new_job, **changes):
            transaction.set_rollback(True)
            return False
    row.job_id = new_job
    attempts.note(from_job, attempts.Outcome.CONTINUED)
    return True


# --- one run of a job ---------------------------------------------------------------------


def run(kind, row_id, body):
    """Claim the row for the running job and call `body(row)`; its answer is the job's.

    A PermanentFailure, or any error on the job's last try, fails the row and then the job
    (RowFailed). Any other error puts the row back to wait and is raised again, so that RQ
    retries the job after the queue's next delay. Either way, the attempt goes on record.
    """
    job = get_current_job()
    attempt = attempts.begin(kind, row_id, job)
    try:
        answer = run_attempt(kind, row_id, job, body)
    except RowFailed as exc:
        attempt.end(attempts.Outcome.FAILED, str(exc))
        raise
    except Exception as exc:
        attempt.end(attempts.Outcome.RETRYING, describe(exc))
        raise
    except BaseException as exc:
        # A cold shutdown (SystemExit) in the middle of the job: the reconciler resumes the row.
        attempt.end(attempts.Outcome.LOST, f"the worker stopped mid-job ({type(exc).__name__})")
        raise
    attempt.end()
    return answer


def run_attempt(kind, row_id, job, body):
    row = claim(kind, row_id, job)
    if row is None:
        return "nothing to do"
    try:
        return body(row)
    except RowFailed:
        raise
    except PermanentFailure as exc:
        fail(kind, row, job, str(exc), counted=exc.counted, **exc.changes)
    except Exception as exc:
        message = describe(exc)
        if not job.retries_left:
            fail(kind, row, job, message)
        retry_later(kind, row, job.id, message)
        raise


def claim(kind, row_id, job):
    """The row, claimed for `job`; None when the job does not hold it in a claimable status."""
    if not held(kind, row_id, job.id).filter(status__in=kind.claimable).update(**claim_changes(kind)):
        if not reopen_for_requeued_job(kind, row_id, job):
            return None
        held(kind, row_id, job.id).filter(status__in=kind.claimable).update(**claim_changes(kind))
    return kind.model.objects.select_related(*kind.related).get(pk=row_id)


def claim_changes(kind):
    changes = {"updated_at": timezone.now()}
    if kind.running:
        changes["status"] = kind.running
    if kind.counts_attempts_on_claim:
        changes["attempts"] = F("attempts") + 1
    if kind.started_field:
        changes[kind.started_field] = changes["updated_at"]
    return changes


def reopen_for_requeued_job(kind, row_id, job):
    """A failed row's own job runs again: someone requeued it (dashboard, API, admin).
    Reopen the row with a fresh attempt count, and give the job its retries back."""
    row = held(kind, row_id, job.id).filter(status=kind.failed).first()
    if row is None or not reopen(kind, row):
        return False
    job.retries_left = policy_for(kind.queue).max_retries
    attempts.renumber(job)
    log.info("%s %s: its failed job %s was requeued, trying it again", kind.label, row_id, job.id)
    return True


def reopen(kind, row):
    """Set a failed row up to be tried again by the job it names. True if it was failed."""
    changes = {"attempts": 0, kind.error_field: "", kind.finished_field: None, **kind.reopened(row)}
    return held(kind, row.pk, row.job_id).filter(status=kind.failed).update(updated_at=timezone.now(), **changes) == 1


def succeed(kind, row, job_id, **changes):
    """The job did what the row asked."""
    now = timezone.now()
    finished = {kind.error_field: "", kind.finished_field: now}
    # Inside a caller's transaction (a rule check's run and rule), no savepoint: an error
    # here is raised through the caller's, which rolls back, and a savepoint costs two round
    # trips to PostgreSQL.
    with transaction.atomic(savepoint=False):
        done = update(kind, row, job_id, status=kind.succeeded, **{**finished, **changes})
        if done:
            attempts.record_success(job_id, kind.model, row.pk)
    if done:
        counts = kind.counts(changes) if kind.counts else {}
        attempts.count(job_id, {metrics.rows_finished(kind.label, kind.succeeded): 1, **counts})
    return done


def retry_later(kind, row, job_id, message):
    """A transient error: the row waits for the job's next try, its error kept."""
    resting = {"status": kind.claimable[0]} if kind.running else {}
    update(kind, row, job_id, **{kind.error_field: message[:ERROR_LIMIT]}, **resting)


def fail(kind, row, job, message, *, counted=True, **changes):
    """Fail the row for good, then the job (RowFailed): no retry is left to use. The row and
    its owner's failure count change together, so nobody reads one without the other."""
    message = message[:ERROR_LIMIT]
    finished = {"status": kind.failed, kind.error_field: message, kind.finished_field: timezone.now()}
    with transaction.atomic():
        failed = update(kind, row, job.id, **finished, **changes)
        if failed and counted and kind.on_failed:
            kind.on_failed(row, message)
    if failed:
        attempts.count(job.id, {metrics.rows_finished(kind.label, kind.failed): 1})
    job.retries_left = 0
    raise RowFailed(message)


def wait(kind, row, job_id, seconds, **changes):
    """The remote asked us to wait (429): a new job after `seconds`, the attempt given back."""
    if hand_over(
        kind, row, job_id, options={"delay": seconds}, status=kind.claimable[0], attempts=F("attempts") - 1, **changes
    ):
        attempts.note(job_id, attempts.Outcome.WAITING)
    return f"waiting {seconds:.0f}s"


def describe(exc):
    """What an error is, for the row: in our words when it has them, else its type and text."""
    if isinstance(exc, ExplainedError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# --- operators and the reconciler -------------------------------------------------------


def resume(kind, row):
    """Reconciler: this active row's job is gone; give it a new one. True if it did."""
    return hand_over(kind, row, row.job_id, **kind.resumed(row))


def retry(kind, row, *, statuses=None):
    """An operator's Retry: try a failed row again. Its failed job is requeued when RQ still
    has it (so the dashboard's failed list agrees), else the row gets a new job."""
    if row.status not in (statuses or (kind.failed,)):
        raise ServiceError(
            f"Only a {kind.failed} {kind.model._meta.verbose_name} can be tried again.",
            code="conflict",
            status_code=409,
        )
    ensure_available()
    if row.status == kind.failed and requeue_failed_job(kind, row):
        return
    with transaction.atomic():
        changes = {"attempts": 0, kind.error_field: "", kind.finished_field: None, **kind.reopened(row)}
        hand_over(kind, row, row.job_id, **changes)


def requeue_failed_job(kind, row):
    """Requeue the failed job the row names, its row reopened; False if RQ no longer has it."""
    job = Job.fetch_many([row.job_id], connection=get_redis())[0] if row.job_id else None
    return job is not None and requeue(kind, job)


def requeue_failed(queue_name):
    """Requeue every failed job of the queue, reopening their rows first, so that a row
    says queued while its job waits. Returns how many jobs were requeued."""
    registry = FailedJobRegistry(queue=get_queue(queue_name))
    jobs = Job.fetch_many(registry.get_job_ids(), connection=get_redis())
    return sum(requeue(kind_of_job(job), job) for job in jobs if job is not None)


def requeue(kind, job):
    """Put a failed job back on its queue with fresh retries, its row (if any) reopened."""
    if kind is not None and job.args:
        row = kind.model.objects.filter(pk=job.args[0], job_id=job.id).first()
        if row is not None:
            reopen(kind, row)
    if job.retries_left is not None:
        job.retries_left = policy_for(job.origin).max_retries
        job.save(include_meta=False)
    try:
        FailedJobRegistry(queue=get_queue(job.origin)).requeue(job.id)
    except (InvalidJobOperation, NoSuchJobError):
        return False
    return True
