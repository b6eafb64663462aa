"""What a running job may ask about itself."""

from dataclasses import dataclass

from rq import get_current_job


@dataclass(frozen=True)
class Attempt:
    job_id: str
    last: bool


def current_attempt():
    """The running job's id, and whether a failure now would be final (no retry left)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("current_attempt() called outside a job")
    return Attempt(job_id=job.id, last=not job.retries_left)
