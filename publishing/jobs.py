import logging

from jobs.runtime import current_attempt

from . import services

log = logging.getLogger("conveyor.publishing")


def publishing_advance(publishing_id):
    """Advance one publishing by one step (start, poll or submit); safe to run twice.

    A CLI crash or timeout raises, so the queue retries it with the policy's delays; after
    the last retry the publishing is failed with the error on its row.
    """
    attempt = current_attempt()
    log.info("job %s: publishing %s started", attempt.job_id, publishing_id)
    try:
        outcome = services.publishing_advance(
            publishing_id=publishing_id, job_id=attempt.job_id, last_attempt=attempt.last
        )
    except Exception as exc:
        log.warning("job %s: publishing %s failed (%s): %s", attempt.job_id, publishing_id, type(exc).__name__, exc)
        raise
    log.info("job %s: publishing %s completed: %s", attempt.job_id, publishing_id, outcome)
    return outcome
