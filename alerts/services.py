"""Every write to rules, runs, snapshots, alerts, channels and deliveries.

A run is a row claimed by one job: fetch, extract, normalise, then compare with the
rule's last snapshot under a lock on the rule, so two racing runs cannot both call the
same content new. A change stores a snapshot and an alert, and one delivery per channel,
each its own job. A delivery whose dedupe key already went to its channel within the
window is recorded as a duplicate, not sent: the database decides (DedupeClaim).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ServiceError
from core.outbound import origin_of
from jobs import lifecycle, metrics, ratelimit, scheduling
from jobs.connection import ensure_available
from jobs.policies import policy_for
from workspaces.services import within_quota, workspace_for_write, workspaces_of

from . import channels, diff, extract
from .fetchers import PermanentFetchError, TransientFetchError, fetch
from .models import Alert, AlertDelivery, Channel, DedupeClaim, PlatformRoute, Rule, RuleRun, Snapshot

log = logging.getLogger("conveyor.alerts")

RUN_QUEUE = "rules-run"
DISPATCH_QUEUE = "alerts-dispatch"
CHECK_PREFIX = "rule-check-"
DEBUG_TEXT_LIMIT = 20_000


# --- rules and their schedules ----------------------------------------------------------


def rule_create(*, user=None, workspace_id=None, workspace=None, channels=(), **fields):
    """A new rule, scheduled once committed. `workspace` (the admin's choice) or the one
    `workspace_id` names, if `user` belongs to it, else the user's own. `channels` (ids or
    rows) must be that workspace's; none: its alerts go to every enabled channel."""
    workspace = workspace or workspace_for_write(user=user, workspace_id=workspace_id)
    chosen = channels_of_workspace(workspace.pk, channels)
    fields.setdefault("interval", settings.RULE_DEFAULT_INTERVAL)
    with within_quota(workspace, workspace.rules.all(), limit=settings.WORKSPACE_MAX_RULES, what="rules"):
        rule = scheduling.save_and_resync(Rule(workspace=workspace, **fields), rule_periodic)
        rule.channels.set(chosen)
    return rule


def channels_of_workspace(workspace_id, channels):
    """The channels `channels` (ids or rows) names, all of the workspace's, or a 400 that
    names the others (another workspace's channel reads as no channel at all)."""
    ids = {getattr(channel, "pk", channel) for channel in channels}
    found = list(Channel.objects.filter(workspace_id=workspace_id, pk__in=ids))
    missing = sorted(ids - {channel.pk for channel in found})
    if missing:
        raise ServiceError(
            "No such channel in this rule's workspace.",
            fields={"channels": [f"No such channel in this workspace: {pk}." for pk in missing]},
        )
    return found


# What decides the watched text: changing one starts a new baseline.
WATCHED_FIELDS = ("url", "fetch_mode", "extractor", "expression", "collapse_whitespace", "ignore_patterns")


def rule_update(*, rule, **changes):
    """Apply changes and reschedule at once. Enabling a rule again forgets its error
    streak; changing what it watches starts a new baseline (no alert for the edit). Moving
    the URL to another origin drops the stored headers unless new ones come with it: they
    are credentials for the old origin, and any member of the workspace may edit the URL.
    Its channels stay its workspace's: a rule moved to another workspace (admin) must be
    given that workspace's channels, or none."""
    chosen = updated_channels(rule, changes)
    with transaction.atomic():
        rule = rule_apply(rule, changes)
        if chosen is not None:
            rule.channels.set(chosen)
    return rule


def updated_channels(rule, changes):
    """The rule's new channels (None: unchanged), checked against its workspace after the changes."""
    workspace = changes.get("workspace", rule.workspace)
    workspace_id = getattr(workspace, "pk", workspace)
    if "channels" in changes:
        return channels_of_workspace(workspace_id, changes.pop("channels"))
    if workspace_id != rule.workspace_id and rule.channels.exclude(workspace_id=workspace_id).exists():
        raise ServiceError(
            "This rule's channels belong to its old workspace.",
            fields={"channels": ["Choose channels of the new workspace, or none."]},
        )
    return None


def rule_apply(rule, changes):
    if "url" in changes and "headers" not in changes and origin_of(changes["url"]) != origin_of(rule.url):
        changes["headers"] = {}
    if changes.get("enabled") and not rule.enabled:
        changes.update(consecutive_errors=0, error_alerted=False, last_error="")
    if any(name in changes and changes[name] != getattr(rule, name) for name in WATCHED_FIELDS):
        changes["revision"] = rule.revision + 1
    for name, value in changes.items():
        setattr(rule, name, value)
    return scheduling.save_and_resync(rule, rule_periodic)


def rule_delete(*, rule):
    scheduling.delete_and_unschedule(rule, check_job_id(rule.pk))


def check_job_id(rule_id):
    return f"{CHECK_PREFIX}{rule_id}"


def rule_periodic(rule):
    return scheduling.Periodic(
        check_job_id(rule.pk),
        "alerts.jobs.rule_check",
        rule.interval,
        queue=RUN_QUEUE,
        args=(rule.pk,),
        jitter=True,
        cron=rule.cron,
    )


def rule_schedules():
    """Every enabled rule's check, for the scheduler's periodic sync."""
    return [rule_periodic(rule) for rule in Rule.objects.filter(enabled=True).only("id", "interval", "cron")]


# --- asking for runs --------------------------------------------------------------------


def rule_check(*, rule_id):
    """The schedule's turn: queue a run unless the rule is off or a run is already pending."""
    rule = Rule.objects.filter(pk=rule_id, enabled=True).first()
    if rule is None:
        return "rule disabled or gone"
    if RuleRun.objects.filter(rule=rule, status__in=RuleRun.ACTIVE_STATUSES).exists():
        return "a run is already pending"
    run = run_create(rule, trigger=RuleRun.Trigger.SCHEDULE)
    return f"run {run.pk} queued"


def rule_run_request(*, user, rule, force_mode=None, debug=False, trigger=RuleRun.Trigger.MANUAL_TEST):
    """A user's test run: it goes before the scheduled ones, up to RULE_FRONT_RUNS_PER_HOUR
    of them per user (past that, a 429 says so). Returns the RuleRun."""
    if front_runs_this_hour(requested_by=user) >= settings.RULE_FRONT_RUNS_PER_HOUR:
        raise ServiceError(
            f"You asked for {settings.RULE_FRONT_RUNS_PER_HOUR} test runs within the hour, the limit; "
            "your rules' scheduled checks go on.",
            code="front_of_queue_limit",
            status_code=429,
        )
    ensure_available()
    return run_create(rule, trigger=trigger, user=user, mode=force_mode, debug=debug)


def front_runs_this_hour(**owner):
    since = timezone.now() - timedelta(hours=1)
    return RuleRun.objects.filter(at_front=True, requested_at__gte=since, **owner).count()


def goes_to_front(rule, trigger):
    """Test runs go ahead of the scheduled ones; so do a high-priority rule's scheduled runs,
    up to RULE_FRONT_RUNS_PER_HOUR an hour per workspace, so one tenant cannot starve the rest."""
    if trigger != RuleRun.Trigger.SCHEDULE:
        return True
    if rule.priority != Rule.Priority.HIGH:
        return False
    scheduled = front_runs_this_hour(workspace_id=rule.workspace_id, trigger=RuleRun.Trigger.SCHEDULE)
    return scheduled < settings.RULE_FRONT_RUNS_PER_HOUR


def run_retry(*, user, run):
    """Check a failed run's rule again: the same run, reopened with a fresh attempt count."""
    lifecycle.retry(RUN, run)


def run_create(rule, *, trigger, user=None, mode=None, debug=False):
    run = RuleRun(
        rule=rule,
        workspace_id=rule.workspace_id,
        trigger=trigger,
        requested_by=user,
        fetch_mode=mode or rule.fetch_mode,
        debug=debug,
        at_front=goes_to_front(rule, trigger),
    )
    return lifecycle.start(RUN, run)


def run_job_options(run):
    """A run counts against its domain's limit, unless that domain is exempt."""
    rule = run.rule
    return {
        "rate_key": rule.domain,
        "rate_limited": rule.domain not in settings.RULES_UNLIMITED_DOMAINS,
        "at_front": run.at_front,
        "description": f"check {rule.name} ({run.trigger})",
    }


# --- running a check --------------------------------------------------------------------


def rule_run(run):
    """Check the rule once for a run its job holds: fetch, extract, compare, alert."""
    rule = run.rule
    if not rule.enabled and run.trigger == RuleRun.Trigger.SCHEDULE:
        raise lifecycle.PermanentFailure("The rule is disabled.", counted=False)
    try:
        page = fetch(rule.url, mode=run.fetch_mode, headers=rule.headers or {})
        text = watched_text(rule, page.text)
    except (PermanentFetchError, extract.ExtractError) as exc:
        raise lifecycle.PermanentFailure(str(exc)) from None
    except TransientFetchError as exc:
        if exc.wait:
            # The site asked for a pause: no run of any rule on this domain starts before it ends.
            ratelimit.block(ratelimit.limiter_key(RUN_QUEUE, rule.domain), exc.wait)
        raise
    changed, snapshot = compare_and_store(rule, run, text)
    run_succeed(run, page, changed=changed, snapshot=snapshot, text=text)
    return "changed" if changed else "unchanged"


def watched_text(rule, body):
    """Extract and normalise; a watched part that matched nothing is an error, not a blank."""
    options = extract.Normalisation(
        collapse_whitespace=rule.collapse_whitespace, ignore_patterns=tuple(rule.ignore_patterns or ())
    )
    text = extract.normalise(extract.extract(rule.extractor, rule.expression, body), options)
    if not text.strip():
        raise extract.ExtractError(f"the {rule.extractor} expression matched nothing on the page")
    return text


def compare_and_store(rule, run, text):
    """(changed, snapshot): store the text if it differs from the last snapshot, and alert.

    Most checks find no change: they compare with the last snapshot of the revision their
    text was extracted under, and write nothing, so they take no lock. Anything else is
    decided again with the rule row locked: a second run of the same rule waits, then
    finds this snapshot and no change. The first snapshot of a rule (or of a rule's new
    revision, after an edit of what it watches) is its baseline: no alert. Text extracted
    under a revision that an edit has since replaced is neither a change nor a baseline:
    the next run reads the page as the edit says.
    """
    last = last_snapshot(rule, rule.revision)
    if last is not None and not diff.is_change(last.text, text):
        return False, last
    with transaction.atomic():
        revision = Rule.objects.select_for_update().filter(pk=rule.pk).values_list("revision", flat=True).first()
        if revision != rule.revision:
            return False, last
        last = last_snapshot(rule, revision)
        if last is not None and not diff.is_change(last.text, text):
            return False, last
        snapshot = Snapshot.objects.create(rule=rule, revision=revision, fingerprint=diff.fingerprint(text), text=text)
        prune_snapshots(rule)
        if last is None:
            return False, snapshot
        alert = alert_raise(
            run,
            rule,
            Alert.Kind.CHANGE,
            title=f"{rule.name} changed",
            diff=diff.unified(last.text, text),
            dedupe_key=f"change:{rule.pk}:{snapshot.fingerprint}",
        )
        Rule.objects.filter(pk=rule.pk).update(last_changed_at=timezone.now())
    log.info("rule %s changed: alert %s", rule.pk, alert.pk)
    return True, snapshot


def last_snapshot(rule, revision):
    return Snapshot.objects.filter(rule=rule, revision=revision).order_by("-id").first()


def prune_snapshots(rule):
    """Keep the newest RULE_SNAPSHOTS_KEPT snapshots of the rule."""
    stale = (
        Snapshot.objects.filter(rule=rule).order_by("-id").values_list("pk", flat=True)[settings.RULE_SNAPSHOTS_KEPT :]
    )
    stale_ids = list(stale)
    if stale_ids:
        Snapshot.objects.filter(pk__in=stale_ids).delete()


@transaction.atomic  # the run and its rule's last run agree; one commit, not two
def run_succeed(run, page, *, changed, snapshot, text):
    now = timezone.now()
    debug_output = debug_report(page, text) if run.debug else None
    lifecycle.succeed(
        RUN,
        run,
        run.job_id,
        http_status=page.status,
        duration_ms=page.duration_ms,
        changed=changed,
        snapshot=snapshot,
        debug_output=debug_output,
    )
    Rule.objects.filter(pk=run.rule_id).update(consecutive_errors=0, last_error="", last_run_at=now, updated_at=now)
    rule_record_recovery(run)


def rule_record_recovery(run):
    """A success after an error alert says so, once: the alert ends the streak it reported.
    The rule as the run claimed it tells whether there is a streak to end: a streak alerted
    after that is ended by the next success."""
    if not run.rule.error_alerted:
        return
    with transaction.atomic():
        if not Rule.objects.filter(pk=run.rule_id, error_alerted=True).update(error_alerted=False):
            return
        rule = Rule.objects.get(pk=run.rule_id)
        alert = alert_raise(
            run,
            rule,
            Alert.Kind.RECOVERED,
            title=f"{rule.name} works again",
            dedupe_key=f"recovered:{rule.pk}:{run.pk}",
        )
    log.info("rule %s recovered: alert %s", rule.pk, alert.pk)


def debug_report(page, text):
    return {
        "content_type": page.content_type,
        "fetched": page.text[:DEBUG_TEXT_LIMIT],
        "extracted": text[:DEBUG_TEXT_LIMIT],
        "requests": page.requests,
        "blocked": page.blocked,
    }


def rule_record_error(run, message):
    """Count a failed run; the streak reaching the rule's threshold raises one error alert."""
    now = timezone.now()
    Rule.objects.filter(pk=run.rule_id).update(
        consecutive_errors=F("consecutive_errors") + 1, last_error=message, last_run_at=now, updated_at=now
    )
    with transaction.atomic():
        # A conditional update: of two runs failing at once, one raises the alert.
        reached = Rule.objects.filter(
            pk=run.rule_id, error_alerted=False, consecutive_errors__gte=F("error_threshold")
        ).update(error_alerted=True)
        if not reached:
            return
        rule = Rule.objects.get(pk=run.rule_id)
        alert = alert_raise(
            run,
            rule,
            Alert.Kind.ERROR,
            title=f"{rule.name} failed {rule.consecutive_errors} times in a row",
            diff=message,
            dedupe_key=f"error:{rule.pk}",
        )
    log.warning("rule %s: error alert %s after %s failures", rule.pk, alert.pk, rule.consecutive_errors)


# --- dispatching alerts -----------------------------------------------------------------


def alert_raise(run, rule, kind, *, title, dedupe_key, diff=""):
    """Store an alert of the run and queue it to every channel; call inside a transaction."""
    alert = Alert.objects.create(
        workspace_id=rule.workspace_id, rule=rule, run=run, kind=kind, title=title, diff=diff, dedupe_key=dedupe_key
    )
    alert_dispatch(alert)
    return alert


def alert_dispatch(alert):
    """One delivery per enabled channel the alert's rule chose, or, when it chose none, per
    enabled channel of the workspace; call inside a transaction."""
    for channel in alert_channels(alert):
        queue_delivery(channel, alert.dedupe_key, alert=alert)


def alert_channels(alert):
    enabled = Channel.objects.filter(workspace_id=alert.workspace_id, enabled=True)
    if Rule.channels.through.objects.filter(rule_id=alert.rule_id).exists():
        return enabled.filter(rules=alert.rule_id)
    return enabled


def channel_send(channel, message, *, dedupe_key=None, window=None):
    """Queue `message` ({"title", "body", "kind", …}) to the channel: how other apps push
    to alert channels. With a dedupe key, sent once per dedupe window (the alerts-dispatch
    queue's, unless `window`, a timedelta, says otherwise). Call in a transaction."""
    return queue_delivery(channel, dedupe_key, window=window, message=message)


def queue_delivery(channel, dedupe_key, *, window=None, **fields):
    """A delivery row and its job, or a row marked duplicate when the dedupe key already
    went to this channel within the window."""
    delivery = AlertDelivery.objects.create(channel=channel, workspace_id=channel.workspace_id, **fields)
    if window is None:
        window = timedelta(seconds=policy_for(DISPATCH_QUEUE).dedupe_window or 0)
    if dedupe_key and window and not claim_dedupe(channel, dedupe_key, window):
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            status=AlertDelivery.Status.DUPLICATE, last_error=f"{dedupe_key} was sent within {window}"
        )
        return delivery
    return lifecycle.start(DELIVERY, delivery)


def claim_dedupe(channel, dedupe_key, window):
    """True for the one caller that may send `dedupe_key` to the channel now."""
    now = timezone.now()
    if DedupeClaim.objects.filter(channel=channel, dedupe_key=dedupe_key, until__lte=now).update(until=now + window):
        return True
    try:
        with transaction.atomic():
            DedupeClaim.objects.create(channel=channel, dedupe_key=dedupe_key, until=now + window)
        return True
    except IntegrityError:
        return False


PRUNE_PREFIX = "alerts-prune-"


def housekeeping_schedules():
    """The alerts app's own periodic work, for the scheduler's sync."""
    return [scheduling.Periodic(f"{PRUNE_PREFIX}claims", "alerts.jobs.claims_prune", 3600)]


def claims_prune():
    """Delete dedupe claims whose window has passed (an expired claim is also reusable)."""
    deleted, _ = DedupeClaim.objects.filter(until__lt=timezone.now()).delete()
    return deleted


def delivery_resend(*, delivery):
    """Send a delivery again (an operator's choice: no dedupe), with fresh attempts."""
    finished = (AlertDelivery.Status.DELIVERED, AlertDelivery.Status.FAILED, AlertDelivery.Status.DUPLICATE)
    if delivery.status not in finished:
        raise ServiceError("This delivery is still being sent.", code="delivery_pending", status_code=409)
    lifecycle.retry(DELIVERY, delivery, statuses=finished)


def delivery_send(delivery):
    """Send one delivery its job holds. Delivered is recorded with the send, so a retry or a
    rerun never sends it again; the message carries the delivery's id for receivers that
    dedupe (a worker killed mid-request may leave them the same message twice)."""
    if not delivery.channel.enabled:
        raise lifecycle.PermanentFailure("The channel is disabled.")
    try:
        channels.send(delivery.channel, message_for(delivery))
    except channels.DeliveryFailed as exc:
        if exc.permanent:
            raise lifecycle.PermanentFailure(str(exc)) from None
        raise
    lifecycle.succeed(DELIVERY, delivery, delivery.job_id, delivered_at=timezone.now())
    log.info("delivery %s (%s) delivered", delivery.pk, delivery)
    return "delivered"


def delivery_send_now(delivery):
    """Send a queued delivery from this process, for when no worker can (the scheduler's
    platform alerts while no worker lives). The row is claimed as its job would claim it: when
    a worker takes that job, it finds the row delivered and does nothing; a failed send leaves
    the row queued, with its error, for that job. True if it was delivered."""
    claimed = (
        lifecycle.held(DELIVERY, delivery.pk, delivery.job_id)
        .filter(status=AlertDelivery.Status.QUEUED)
        .update(status=AlertDelivery.Status.SENDING, attempts=F("attempts") + 1, updated_at=timezone.now())
    )
    if not claimed:
        return False
    try:
        channels.send(delivery.channel, message_for(delivery))
    except Exception as exc:
        lifecycle.retry_later(DELIVERY, delivery, delivery.job_id, lifecycle.describe(exc))
        return False
    lifecycle.succeed(DELIVERY, delivery, delivery.job_id, delivered_at=timezone.now())
    log.info("delivery %s (%s) delivered by this process", delivery.pk, delivery)
    return True


TEST_MESSAGE = {"title": "Conveyor test message", "body": "This channel receives Conveyor's alerts.", "kind": "test"}


def message_for(delivery):
    """What a channel receives: the alert, or the message the delivery carries."""
    alert = delivery.alert
    if alert is None:
        return {**(delivery.message or TEST_MESSAGE), "delivery": delivery.pk}
    body = f"{alert.rule.url}\n\n{alert.diff}" if alert.diff else alert.rule.url
    return {
        "title": alert.title,
        "body": body,
        "kind": alert.kind,
        "alert": alert.pk,
        "rule": alert.rule_id,
        "url": alert.rule.url,
        "diff": alert.diff,
        "created_at": alert.created_at.isoformat(),
        "delivery": delivery.pk,
    }


# --- channels ---------------------------------------------------------------------------


def channel_create(*, user=None, workspace_id=None, workspace=None, name, kind, url, enabled=True):
    """Returns (channel, secret): a webhook's signing secret is shown once, at creation."""
    workspace = workspace or workspace_for_write(user=user, workspace_id=workspace_id)
    secret = channels.new_webhook_secret() if kind == Channel.Kind.WEBHOOK else None
    config = {"url": url, "secret": secret} if secret else {"url": url}
    with within_quota(workspace, workspace.channels.all(), limit=settings.WORKSPACE_MAX_CHANNELS, what="channels"):
        channel = Channel.objects.create(
            workspace=workspace, name=name, kind=kind, config=config, service=service_of(kind, url), enabled=enabled
        )
    return channel, secret


def service_of(kind, url):
    return "webhook" if kind == Channel.Kind.WEBHOOK else channels.apprise_service(url)


def channel_update(*, channel, url=None, **changes):
    if url is not None:
        channel.config = {**channel.config, "url": url}
        channel.service = service_of(channel.kind, url)
    for name, value in changes.items():
        setattr(channel, name, value)
    channel.save()
    return channel


def channel_test(*, channel):
    """Queue a test message to the channel, at most one per dedupe window (a 429 says when
    the last one went), so that tests cannot be used to flood a channel. Returns the AlertDelivery."""
    ensure_available()
    window = timedelta(seconds=policy_for(DISPATCH_QUEUE).dedupe_window or 0)
    with transaction.atomic():
        if window and not claim_dedupe(channel, "test", window):
            raise ServiceError(
                f"A test message went to this channel less than {window.total_seconds():.0f} seconds ago.",
                code="channel_test_deduped",
                status_code=429,
            )
        return channel_send(channel, TEST_MESSAGE)


# --- platform routes ------------------------------------------------------------------------


def platform_route_create(*, event, user=None, channel_id=None, channel=None, threshold_minutes=None):
    """Route a platform event to `channel` (the admin's choice) or to the one of the user's
    channels `channel_id` names; the route belongs to the channel's workspace. A health
    event without a threshold gets the default one."""
    channel = channel or Channel.objects.filter(pk=channel_id, workspace__in=workspaces_of(user)).first()
    if channel is None:
        raise ServiceError("No such channel.", fields={"channel": ["No such channel."]})
    route = PlatformRoute(workspace_id=channel.workspace_id, channel=channel, event=event)
    return route_save(route, threshold_minutes=threshold_minutes)


def platform_route_update(*, route, channel_id=None, **changes):
    """Change a route's event, threshold or channel (another of its workspace's)."""
    if channel_id is not None:
        route.channel = Channel.objects.filter(pk=channel_id, workspace_id=route.workspace_id).first()
        if route.channel is None:
            raise ServiceError("No such channel in this route's workspace.", fields={"channel": ["No such channel."]})
    route.event = changes.pop("event", route.event)
    threshold = changes.pop("threshold_minutes", route.threshold_minutes if route.platform_wide else None)
    return route_save(route, threshold_minutes=threshold)


def route_save(route, *, threshold_minutes):
    if threshold_minutes is not None and not route.platform_wide:
        raise ServiceError(
            f"A {route.event} route has no threshold.",
            fields={"threshold_minutes": ["Only queue_backlog and no_worker routes have a threshold."]},
        )
    if route.platform_wide and threshold_minutes is None:
        threshold_minutes = DEFAULT_THRESHOLDS[route.event]()
    route.threshold_minutes = threshold_minutes
    already = ServiceError("This channel already hears this event.", fields={"event": ["Already routed here."]})
    if PlatformRoute.objects.filter(channel=route.channel, event=route.event).exclude(pk=route.pk).exists():
        raise already
    try:
        with transaction.atomic():
            route.save()
    except IntegrityError:
        raise already from None  # a racing request routed it first
    return route


DEFAULT_THRESHOLDS = {
    PlatformRoute.Event.QUEUE_BACKLOG: lambda: settings.PLATFORM_BACKLOG_MINUTES,
    PlatformRoute.Event.NO_WORKER: lambda: settings.PLATFORM_NO_WORKER_MINUTES,
}


def platform_route_delete(*, route):
    route.delete()


RUN = lifecycle.Kind(
    model=RuleRun,
    queue=RUN_QUEUE,
    func="alerts.jobs.rule_run",
    error_field="error",
    started_field="started_at",
    related=("rule",),
    job_options=run_job_options,
    on_failed=rule_record_error,
    counts=lambda changes: {metrics.RULE_CHANGES: int(bool(changes.get("changed")))},
)

DELIVERY = lifecycle.Kind(
    model=AlertDelivery,
    queue=DISPATCH_QUEUE,
    func="alerts.jobs.delivery_send",
    running=AlertDelivery.Status.SENDING,
    succeeded=AlertDelivery.Status.DELIVERED,
    finished_field="delivered_at",
    related=("alert__rule", "channel"),
    job_options=lambda delivery: {"description": f"deliver {delivery}"},
    reopened=lambda delivery: {"status": AlertDelivery.Status.QUEUED, "delivered_at": None},
)
