from jobs import lifecycle

from . import services


def publishing_advance(publishing_id):
    """Advance one publishing by one step (start, poll or submit); safe to run twice.

    A CLI crash or timeout raises, so the queue retries it with the policy's delays; after
    the last retry, or at once for an ERRORED or CANCELED build, the publishing fails and
    so does this job (RQ's failed registry holds it with the publishing's error).
    """
    return lifecycle.run(services.PUBLISHING, publishing_id, services.publishing_advance)


def credentials_purge():
    """Hourly (maintenance queue): forget the credentials of publishings that ended."""
    return f"credentials of {services.credentials_purge()} ended publishings forgotten"
