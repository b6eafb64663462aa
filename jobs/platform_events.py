"""Platform events: what an operator must hear about without watching the dashboard.

Apps emit row events where they happen (a publishing failed for good, a source disabled
after its failed fetches); whoever listens (the alerts app, which routes them to a
workspace's channels) subscribes a handler. This module also measures the platform's
health, for the periodic checks: each queue's oldest queued job, and since when no worker
has been alive. It knows nothing of who listens.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from rq.job import Job

from . import pausing
from .connection import key
from .policies import all_policies
from .queueing import get_queue

log = logging.getLogger("conveyor.platform")

PUBLISHING_FAILED = "publishing_failed"
SOURCE_DISABLED = "source_disabled"

# The head of a queue holds its oldest jobs (new ones go to the tail; a test run or a job
# put back under a concurrency cap goes to the front, and is no older).
HEAD_SAMPLE = 20
WORKER_LAST_SEEN_KEY = key("platform", "worker-last-seen")


@dataclass(frozen=True)
class RowEvent:
    """Something happened to one row of one workspace."""

    event: str
    workspace_id: int
    title: str  # one line: what happened to which row
    details: dict = field(default_factory=dict)  # shown as "name: value" lines, and sent as they are
    error: str = ""


_handlers = []


def subscribe(handler):
    """`handler(RowEvent)` hears every row event from now on."""
    _handlers.append(handler)


def emit(event):
    """Tell every handler, inside the caller's transaction (the event is sent only if the
    row's change commits). A handler that fails is logged and rolled back alone: hearing
    about a failure must never undo it."""
    for handler in _handlers:
        try:
            with transaction.atomic():
                handler(event)
        except Exception:
            log.exception("platform event %s of workspace %s: a handler failed", event.event, event.workspace_id)


def moment(when):
    """A time as operators read it in a message: UTC, to the second."""
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if when else "never"


def api_url(view_name, pk):
    return f"{settings.SITE_URL.rstrip('/')}{reverse(view_name, args=[pk])}"


# --- the platform's health ------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    queue: str
    queued: int
    oldest_enqueued_at: datetime


def backlogs(connection):
    """Each queue that has jobs waiting, with its oldest one's enqueue time; paused queues
    are left out (an operator holds them on purpose)."""
    paused = pausing.paused_queue_names(connection)
    found = []
    for name in all_policies():
        if name in paused:
            continue
        queue = get_queue(name, connection=connection)
        oldest = oldest_enqueued_at(queue)
        if oldest is not None:
            found.append(Backlog(name, queue.count, oldest))
    return found


def oldest_enqueued_at(queue):
    jobs = Job.fetch_many(queue.get_job_ids(0, HEAD_SAMPLE - 1), connection=queue.connection)
    times = [job.enqueued_at for job in jobs if job is not None and job.enqueued_at is not None]
    return min(times).replace(tzinfo=UTC) if times else None


def no_worker_since(connection, live_workers):
    """None while a worker is alive; else when one was last seen alive (at the latest, the
    first check that found none). Checks record each sighting."""
    now = time.time()
    if live_workers:
        connection.set(WORKER_LAST_SEEN_KEY, now)
        return None
    connection.set(WORKER_LAST_SEEN_KEY, now, nx=True)
    return datetime.fromtimestamp(float(connection.get(WORKER_LAST_SEEN_KEY)), UTC)
