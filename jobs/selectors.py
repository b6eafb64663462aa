"""Reads for operators that are more than a count: the failed jobs of every queue, searched.

RQ keeps a failed job's error in its result stream and its end time on the job; neither is
indexed, so a search reads the newest FAILED_JOBS_SEARCH_LIMIT failed jobs of each queue
(in pipelines of CHUNK) and filters them here. The answer says when that limit cut it short.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result

from . import lifecycle
from .connection import get_redis
from .policies import all_policies
from .queueing import get_queue

CHUNK = 500
PLATFORM_KIND = "platform"  # the platform's own jobs, which belong to no row


@dataclass(frozen=True)
class FailedSearch:
    """What an operator looks for; every field empty means every failed job."""

    queue: str = ""
    kind: str = ""  # a Kind's label ("publishing.Publishing"), or PLATFORM_KIND
    text: str = ""  # in the error and its traceback, any case
    failed_after: datetime | None = None
    failed_before: datetime | None = None

    def keeps(self, job, kind):
        if self.kind and kind_label(kind) != self.kind:
            return False
        ended = job.ended_at
        if self.failed_after and (ended is None or ended < self.failed_after):
            return False
        return not (self.failed_before and (ended is None or ended >= self.failed_before))


@dataclass
class FailedJob:
    job: Job
    kind: lifecycle.Kind | None
    error: str | None = None  # None until read (with_errors)

    @property
    def queue(self):
        return self.job.origin

    @property
    def failed_at(self):
        return self.job.ended_at

    @property
    def kind_label(self):
        return kind_label(self.kind)

    @property
    def row_id(self):
        return self.job.args[0] if self.kind is not None and self.job.args else None

    @property
    def summary(self):
        """The error's last line: the exception and its message."""
        lines = [line for line in (self.error or "").strip().splitlines() if line.strip()]
        return lines[-1] if lines else "(no error recorded)"

    def row_admin_url(self):
        if self.row_id is None:
            return None
        meta = self.kind.model._meta
        try:
            return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[self.row_id])
        except NoReverseMatch:
            return None


@dataclass
class FailedJobs:
    found: list = field(default_factory=list)  # newest first
    kinds: set = field(default_factory=set)  # the kind labels among every job read
    capped_queues: list = field(default_factory=list)  # queues with more failed jobs than were read


def kind_label(kind):
    return kind.label if kind is not None else PLATFORM_KIND


def failed_jobs(search, connection=None):
    """The failed jobs that `search` keeps, newest first, each with its error."""
    connection = connection or get_redis()
    limit = settings.FAILED_JOBS_SEARCH_LIMIT
    answer = FailedJobs()
    for name in [search.queue] if search.queue else all_policies():
        registry = FailedJobRegistry(queue=get_queue(name, connection))
        job_ids = [raw.decode() for raw in connection.zrevrange(registry.key, 0, limit)]
        if len(job_ids) > limit:
            answer.capped_queues.append(name)
            job_ids = job_ids[:limit]
        for start in range(0, len(job_ids), CHUNK):
            answer.found += kept_jobs(job_ids[start : start + CHUNK], search, answer.kinds, connection)
    answer.found.sort(key=lambda failed: failed.failed_at.timestamp() if failed.failed_at else 0, reverse=True)
    return answer


def kept_jobs(job_ids, search, kinds_seen, connection):
    jobs = [job for job in Job.fetch_many(job_ids, connection=connection) if job is not None]
    kinds = [lifecycle.kind_of_job(job) for job in jobs]
    kinds_seen.update(map(kind_label, kinds))
    kept = [FailedJob(job, kind) for job, kind in zip(jobs, kinds) if search.keeps(job, kind)]
    if not search.text:
        return kept  # errors are read for the page shown only
    with_errors(kept, connection)
    needle = search.text.casefold()
    return [failed for failed in kept if needle in failed.error.casefold()]


def with_errors(failed_jobs, connection=None):
    """Read the error (RQ keeps it with the traceback in the job's latest result) of each
    job that has none read yet, in one round trip."""
    connection = connection or get_redis()
    missing = [failed for failed in failed_jobs if failed.error is None]
    with connection.pipeline(transaction=False) as pipe:
        for failed in missing:
            pipe.xrevrange(Result.get_key(failed.job.id), "+", "-", count=1)
        replies = pipe.execute()
    for failed, reply in zip(missing, replies):
        failed.error = ""
        if reply:
            result_id, payload = reply[0]
            result = Result.restore(failed.job.id, result_id.decode(), payload, connection=connection)
            failed.error = result.exc_string or ""
    return failed_jobs


def row_statuses(failed_jobs):
    """{(kind label, row id): the row's status now}, one query per kind."""
    ids_by_kind = {}
    for failed in failed_jobs:
        if failed.row_id is not None:
            ids_by_kind.setdefault(failed.kind, set()).add(failed.row_id)
    statuses = {}
    for kind, ids in ids_by_kind.items():
        for pk, status in kind.model.objects.filter(pk__in=ids).values_list("pk", "status"):
            statuses[(kind.label, pk)] = status
    return statuses
