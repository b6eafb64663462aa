"""Retention by count and age for finished and failed jobs (RQ only has TTLs).

Age is RQ's own: each job is enqueued with its policy's result_ttl and failure_ttl.
Count is ours: the oldest entries beyond keep_finished / keep_failed are deleted.
"""

from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from .connection import get_redis
from .policies import all_policies
from .queueing import get_queue

CHUNK = 500


def trim_registry(registry, keep):
    """Delete the oldest jobs of `registry` beyond the newest `keep`. Returns how many."""
    registry.cleanup()
    excess = registry.count - keep
    if excess <= 0:
        return 0
    job_ids = oldest_job_ids(registry, excess)
    for start in range(0, len(job_ids), CHUNK):
        delete_jobs(registry, job_ids[start : start + CHUNK])
    return len(job_ids)


def oldest_job_ids(registry, count):
    """The `count` oldest jobs of the registry.

    Scores are expiry times in whole seconds and every job of a queue has the same TTL,
    so lower scores are older jobs; ties at the cut are broken by each job's end time.
    """
    connection = registry.connection
    lowest = connection.zrange(registry.key, 0, count - 1, withscores=True)
    boundary = lowest[-1][1]
    older = [job_id.decode() for job_id, score in lowest if score < boundary]
    tied = [job_id.decode() for job_id in connection.zrangebyscore(registry.key, boundary, boundary)]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in tied:
            pipe.hget(Job.key_for(job_id), "ended_at")
        ended = [value or b"" for value in pipe.execute()]
    tied_oldest_first = [job_id for _, job_id in sorted(zip(ended, tied))]
    return older + tied_oldest_first[: count - len(older)]


def delete_jobs(registry, job_ids):
    jobs = [job for job in Job.fetch_many(job_ids, connection=registry.connection) if job is not None]
    with registry.connection.pipeline() as pipe:
        for job in jobs:
            job.delete(pipeline=pipe, remove_from_queue=False)
        pipe.zrem(registry.key, *job_ids)
        pipe.execute()


def trim_all(connection=None):
    """Apply every queue's count limits. Returns {queue: {"finished": n, "failed": n}}."""
    connection = connection or get_redis()
    trimmed = {}
    for policy in all_policies().values():
        queue = get_queue(policy.name, connection)
        trimmed[policy.name] = {
            "finished": trim_registry(FinishedJobRegistry(queue=queue), policy.keep_finished),
            "failed": trim_registry(FailedJobRegistry(queue=queue), policy.keep_failed),
        }
    return trimmed
