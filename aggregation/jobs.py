import logging

from jobs import lifecycle

from . import services

log = logging.getLogger("conveyor.aggregation")


def fetch_run(fetch_id):
    """Fetch one source once (only what is new since its cursor) and store each post once.

    Network errors, 5xx and malformed answers raise, so the queue retries them; a 429
    re-enqueues the fetch after Retry-After without using an attempt; a refused URL or a
    bad answer fails the fetch, and this job, at once.
    """
    return lifecycle.run(services.FETCH, fetch_id, services.fetch_run)


def source_poll(source_id):
    """Scheduled by rq-scheduler every poll_interval: queue a fetch of the source."""
    return services.source_poll(source_id=source_id)


def notify_new_posts(fetch_id):
    """Match a fetch's new posts against its workspace's subscriptions; safe to run twice."""
    created = services.notify_new_posts(fetch_id=fetch_id)
    log.info("fetch %s: %s notifications", fetch_id, created)
    return created


def action_run(action_id):
    """Like, boost or reply on the remote instance in the user's name; safe to run twice."""
    return lifecycle.run(services.ACTION, action_id, services.action_run)
