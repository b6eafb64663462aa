"""Platform alerts: platform events sent to the channels that routes name (PlatformRoute).

- Row events (a publishing failed for good, a source disabled) reach the routes of the
  row's own workspace, and no other: apps emit them through jobs.platform_events, inside
  the transaction that fails the row. Each failure is emitted once (the row is failed by a
  conditional update), so each is sent.
- Health events (a queue's oldest queued job older than a route's threshold, no live
  worker for longer than it) are about the whole platform: every route to them hears them.
  They are checked every PLATFORM_CHECK_INTERVAL seconds by a maintenance job and, while no
  worker lives (so no job runs), by the rqscheduler process itself, which then sends what
  it finds itself. A condition that lasts reaches a channel once per PLATFORM_ALERT_WINDOW;
  when a check finds it over (no backlog past the threshold, a live worker again), the
  channel hears that once. Their messages name queues and counts, never a row of any workspace.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from jobs import platform_events, scheduling
from jobs.connection import get_redis

from . import services
from .models import AlertDelivery, DedupeClaim, PlatformRoute

log = logging.getLogger("conveyor.alerts.platform")

CHECK_PREFIX = "platform-check-"
Event = PlatformRoute.Event


# --- row events -----------------------------------------------------------------------------


def route_row_event(event):
    """jobs.platform_events handler: send the event to its workspace's routes to it."""
    routes = PlatformRoute.objects.filter(
        workspace_id=event.workspace_id,
        channel__workspace_id=event.workspace_id,
        channel__enabled=True,
        event=event.event,
    ).select_related("channel")
    for route in routes:
        services.channel_send(route.channel, row_message(event))
        log.info(
            "platform event %s of workspace %s sent to channel %s", event.event, event.workspace_id, route.channel_id
        )


def row_message(event):
    lines = [f"{name}: {value}" for name, value in event.details.items()]
    if event.error:
        lines.append(f"error: {event.error}")
    return {
        "title": event.title[:300],
        "body": "\n".join(lines),
        "kind": "platform",
        "event": event.event,
        "workspace": event.workspace_id,
        "details": event.details,
        "error": event.error,
    }


# --- health events --------------------------------------------------------------------------


def check_schedules():
    """The periodic health check, for the scheduler's sync."""
    interval = max(1, round(settings.PLATFORM_CHECK_INTERVAL))
    return [scheduling.Periodic(f"{CHECK_PREFIX}health", "alerts.jobs.platform_check", interval)]


def platform_check(*, send_now=False):
    """Check queue backlogs and live workers against every health route; queue a message
    for each condition a route's threshold is past (`send_now`: send it from this process
    too). Returns the deliveries made."""
    from jobs.worker import count_live_workers

    connection = get_redis()
    live = count_live_workers(connection)
    since = platform_events.no_worker_since(connection, live)  # a sighting is recorded even without routes
    routes = list(
        PlatformRoute.objects.filter(event__in=PlatformRoute.PLATFORM_WIDE, channel__enabled=True).select_related(
            "channel"
        )
    )
    if not routes:
        return []
    backlogs = platform_events.backlogs(connection)
    now = timezone.now()
    sent = []
    for route in routes:
        found = dict(conditions(route, now=now, live=live, since=since, backlogs=backlogs))
        for dedupe_key, message in found.items():
            sent.append(send(route.channel, dedupe_key, message, now=now))
        for dedupe_key, marker in recovered(route, found, live=live, now=now):
            message = recovery_message(route, dedupe_key, now=now, live=live, backlogs=backlogs)
            sent.append(send_recovery(route.channel, dedupe_key, marker, message, now=now))
    sent = [delivery for delivery in sent if delivery is not None]
    if send_now:
        for delivery in sent:
            services.delivery_send_now(delivery)
    return sent


def conditions(route, *, now, live, since, backlogs):
    """(dedupe key, message) of each condition past the route's threshold."""
    threshold = timedelta(minutes=route.threshold_minutes or 0)
    if route.event == Event.NO_WORKER:
        if since is not None and now - since >= threshold:
            yield "platform:no_worker", no_worker_message(since, now=now, backlogs=backlogs)
        return
    for backlog in backlogs:
        if now - backlog.oldest_enqueued_at >= threshold:
            yield f"platform:queue_backlog:{backlog.queue}", backlog_message(backlog, now=now, live=live, route=route)


def send(channel, dedupe_key, message, *, now):
    """Queue the message unless its condition reached this channel within the window (no
    row then: a condition checked every minute must not leave a duplicate every minute).
    The channel's condition is then open, until a check finds it over (`recovered`)."""
    if DedupeClaim.objects.filter(channel=channel, dedupe_key=dedupe_key, until__gt=now).exists():
        return None
    window = timedelta(seconds=settings.PLATFORM_ALERT_WINDOW)
    with transaction.atomic():
        delivery = services.channel_send(channel, message, dedupe_key=dedupe_key, window=window)
        if delivery.status == AlertDelivery.Status.DUPLICATE:
            return None
        DedupeClaim.objects.update_or_create(
            channel=channel, dedupe_key=f"{dedupe_key}{OPEN}", defaults={"until": now + OPEN_AT_MOST}
        )
    log.warning("platform alert to channel %s: %s", channel.pk, message["title"])
    return delivery


# A condition a channel heard of stays open (a DedupeClaim "<key>:open") until a check
# finds it over, which the channel hears once; an open mark older than this is forgotten.
OPEN = ":open"
OPEN_AT_MOST = timedelta(days=7)


def recovered(route, found, *, live, now):
    """(dedupe key, open mark) of each condition the route's channel heard of that is over:
    a backlog no longer past the threshold, a live worker again."""
    marks = DedupeClaim.objects.filter(
        channel=route.channel, dedupe_key__startswith=f"platform:{route.event}", until__gt=now
    ).filter(dedupe_key__endswith=OPEN)
    for mark in marks:
        dedupe_key = mark.dedupe_key.removesuffix(OPEN)
        over = live > 0 if route.event == Event.NO_WORKER else dedupe_key not in found
        if over:
            yield dedupe_key, mark


def send_recovery(channel, dedupe_key, mark, message, *, now):
    """Queue the message that the condition is over, once: the check that deletes its open
    mark sends it. The condition's own claim ends with it, so a new occurrence alerts at once."""
    with transaction.atomic():
        taken, _ = DedupeClaim.objects.filter(pk=mark.pk).delete()
        if not taken:
            return None  # another check took it
        DedupeClaim.objects.filter(channel=channel, dedupe_key=dedupe_key).update(until=now)
        delivery = services.channel_send(channel, message)
    log.warning("platform recovery to channel %s: %s", channel.pk, message["title"])
    return delivery


def minutes(delta):
    return f"{delta.total_seconds() / 60:.0f} min"


def backlog_message(backlog, *, now, live, route):
    waiting = now - backlog.oldest_enqueued_at
    title = f"Queue {backlog.queue}: the oldest queued job has waited {minutes(waiting)}"
    details = {
        "queue": backlog.queue,
        "queued jobs": backlog.queued,
        "oldest queued since": platform_events.moment(backlog.oldest_enqueued_at),
        "threshold": f"{route.threshold_minutes} min",
        "live workers": live,
        "checked at": platform_events.moment(now),
    }
    return health_message(Event.QUEUE_BACKLOG, title, details)


def no_worker_message(since, *, now, backlogs):
    title = f"No live Conveyor worker for {minutes(now - since)}: no job runs"
    details = {
        "last worker seen at": platform_events.moment(since),
        "queued jobs": ", ".join(f"{b.queue} {b.queued}" for b in backlogs) or "none",
        "checked at": platform_events.moment(now),
    }
    return health_message(Event.NO_WORKER, title, details)


def recovery_message(route, dedupe_key, *, now, live, backlogs):
    if route.event == Event.NO_WORKER:
        title = f"Workers are back: {live} live"
        details = {"live workers": live, "checked at": platform_events.moment(now)}
    else:
        queue = dedupe_key.removeprefix(f"platform:{Event.QUEUE_BACKLOG}:")
        queued = next((backlog.queued for backlog in backlogs if backlog.queue == queue), 0)
        title = f"Queue {queue}: recovered, no queued job has waited {route.threshold_minutes} min"
        details = {
            "queue": queue,
            "queued jobs": queued,
            "threshold": f"{route.threshold_minutes} min",
            "live workers": live,
            "checked at": platform_events.moment(now),
        }
    return health_message(route.event, title, details, recovered=True)


def health_message(event, title, details, *, recovered=False):
    return {
        "title": title[:300],
        "body": "\n".join(f"{name}: {value}" for name, value in details.items()),
        "kind": "platform",
        "event": event,
        "recovered": recovered,
        "details": details,
    }


# --- the scheduler's own check, while no worker lives ---------------------------------------

_paced = {"at": float("-inf")}


def scheduler_tick():
    """rqscheduler's tick, paced to PLATFORM_CHECK_INTERVAL: record a live worker, or, when
    there is none (so the maintenance job cannot run), check and send from here."""
    from jobs.worker import count_live_workers

    if time.monotonic() - _paced["at"] < settings.PLATFORM_CHECK_INTERVAL:
        return
    _paced["at"] = time.monotonic()
    connection = get_redis()
    live = count_live_workers(connection)
    if live:
        platform_events.no_worker_since(connection, live)
        return
    close_old_connections()
    try:
        platform_check(send_now=True)
    finally:
        close_old_connections()
