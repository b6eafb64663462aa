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
from jobs import ratelimit, reconciler, scheduling
from jobs.connection import ensure_available
from jobs.policies import policy_for
from jobs.queueing import enqueue
from workspaces.services import workspace_for_write

from . import channels, diff, extract
from .fetchers import PermanentFetchError, TransientFetchError, fetch
from .models import Alert, AlertDelivery, Channel, DedupeClaim, Rule, RuleRun, Snapshot

log = logging.getLogger("conveyor.alerts")

RUN_QUEUE = "rules-run"
DISPATCH_QUEUE = "alerts-dispatch"
CHECK_PREFIX = "rule-check-"
DEBUG_TEXT_LIMIT = 20_000


# --- rules and their schedules ----------------------------------------------------------


def rule_create(*, user, workspace_id=None, **fields):
    workspace = workspace_for_write(user=user, workspace_id=workspace_id)
    fields.setdefault("interval", settings.RULE_DEFAULT_INTERVAL)
    return scheduling.save_and_resync(Rule(workspace=workspace, **fields), rule_periodic)


# What decides the watched text: changing one starts a new baseline.
WATCHED_FIELDS = ("url", "fetch_mode", "extractor", "expression", "collapse_whitespace", "ignore_patterns")


def rule_update(*, rule, **changes):
    """Apply changes and reschedule at once. Enabling a rule again forgets its error
    streak; changing what it watches starts a new baseline (no alert for the edit). Moving
    the URL to another origin drops the stored headers unless new ones come with it: they
    are credentials for the old origin, and any member of the workspace may edit the URL."""
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


def rule_schedule_sync(rule):
    scheduling.sync_quietly(rule_periodic(rule), rule.enabled)


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
    """A user's test run: it goes before the scheduled ones. Returns the RuleRun."""
    ensure_available()
    return run_create(rule, trigger=trigger, user=user, mode=force_mode, debug=debug)


def run_retry(*, user, run):
    """Check a failed run's rule again, the same way, ahead of the scheduled runs."""
    if run.status != RuleRun.Status.FAILED:
        raise ServiceError("Only failed runs can be retried.", code="not_failed", status_code=409)
    ensure_available()
    return run_create(run.rule, trigger=RuleRun.Trigger.RETRY, user=user, mode=run.fetch_mode, debug=run.debug)


def run_create(rule, *, trigger, user=None, mode=None, debug=False):
    with transaction.atomic():
        run = RuleRun.objects.create(
            rule=rule,
            workspace_id=rule.workspace_id,
            trigger=trigger,
            requested_by=user,
            fetch_mode=mode or rule.fetch_mode,
            debug=debug,
        )
        run.job_id = run_enqueue(run, rule)
        run.save(update_fields=["job_id"])
    return run


def run_enqueue(run, rule):
    """Enqueue the run's job: counted against its domain's limit, unless that domain is
    exempt; what a person asked for (tests, retries) and high-priority rules go to the
    front of the queue."""
    domain = rule.domain
    return enqueue(
        "alerts.jobs.rule_run",
        run.pk,
        queue=RUN_QUEUE,
        rate_key=domain,
        rate_limited=domain not in settings.RULES_UNLIMITED_DOMAINS,
        at_front=run.trigger != RuleRun.Trigger.SCHEDULE or rule.priority == Rule.Priority.HIGH,
        description=f"check {rule.name} ({run.trigger})",
    )


def run_resume(run):
    """Reconciler: this run has no live job; give it a new one."""
    reconciler.requeue(run, lambda: run_enqueue(run, run.rule))


# --- running a check --------------------------------------------------------------------


def rule_run(*, run_id, job_id, last_attempt):
    """Check the rule once, if `job_id` holds the run. Safe to run twice."""
    claimed = RuleRun.objects.filter(pk=run_id, job_id=job_id, status=RuleRun.Status.QUEUED).update(
        status=RuleRun.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), updated_at=timezone.now()
    )
    if not claimed:
        return "nothing to do"
    run = RuleRun.objects.select_related("rule").get(pk=run_id)
    rule = run.rule
    if not rule.enabled and run.trigger == RuleRun.Trigger.SCHEDULE:
        return run_fail(run, "The rule is disabled.", count=False)
    try:
        page = fetch(rule.url, mode=run.fetch_mode, headers=rule.headers or {})
        text = watched_text(rule, page.text)
    except (PermanentFetchError, extract.ExtractError) as exc:
        return run_fail(run, str(exc))
    except TransientFetchError as exc:
        if exc.wait:
            # The site asked for a pause: no run of any rule on this domain starts before it ends.
            ratelimit.block(ratelimit.limiter_key(RUN_QUEUE, rule.domain), exc.wait)
        return run_transient_failure(run, str(exc), last_attempt=last_attempt)
    except Exception as exc:
        # Anything unexpected is retried too; its last failure fails the run, so a bad
        # row cannot loop through the reconciler.
        return run_transient_failure(run, f"{type(exc).__name__}: {exc}", last_attempt=last_attempt)
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

    The rule row is locked meanwhile: a second run of the same rule waits, then finds
    this snapshot and no change. The first snapshot of a rule (or of a rule's new
    revision, after an edit of what it watches) is its baseline: no alert.
    """
    with transaction.atomic():
        revision = Rule.objects.select_for_update().filter(pk=rule.pk).values_list("revision", flat=True).first()
        last = Snapshot.objects.filter(rule=rule, revision=revision).order_by("-id").first()
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


def prune_snapshots(rule):
    """Keep the newest RULE_SNAPSHOTS_KEPT snapshots of the rule."""
    stale = (
        Snapshot.objects.filter(rule=rule).order_by("-id").values_list("pk", flat=True)[settings.RULE_SNAPSHOTS_KEPT :]
    )
    stale_ids = list(stale)
    if stale_ids:
        Snapshot.objects.filter(pk__in=stale_ids).delete()


def run_succeed(run, page, *, changed, snapshot, text):
    now = timezone.now()
    debug_output = debug_report(page, text) if run.debug else None
    RuleRun.objects.filter(pk=run.pk).update(
        status=RuleRun.Status.SUCCEEDED,
        http_status=page.status,
        duration_ms=page.duration_ms,
        changed=changed,
        snapshot=snapshot,
        error="",
        debug_output=debug_output,
        finished_at=now,
        updated_at=now,
    )
    Rule.objects.filter(pk=run.rule_id).update(consecutive_errors=0, last_error="", last_run_at=now, updated_at=now)
    rule_record_recovery(run)


def rule_record_recovery(run):
    """A success after an error alert says so, once: the alert ends the streak it reported."""
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


def run_transient_failure(run, message, *, last_attempt):
    if last_attempt:
        return run_fail(run, message)
    RuleRun.objects.filter(pk=run.pk, status=RuleRun.Status.RUNNING).update(
        status=RuleRun.Status.QUEUED, error=message, updated_at=timezone.now()
    )
    log.warning("run %s of rule %s: will retry: %s", run.pk, run.rule_id, message)
    # Raising hands the job back to RQ, which retries it after the queue's next delay.
    raise TransientFetchError(message)


def run_fail(run, message, *, count=True):
    now = timezone.now()
    RuleRun.objects.filter(pk=run.pk).update(
        status=RuleRun.Status.FAILED, error=message, finished_at=now, updated_at=now
    )
    log.warning("run %s of rule %s failed: %s", run.pk, run.rule_id, message)
    if count:
        rule_record_error(run, message)
    return "failed"


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
    """One delivery per enabled channel of the workspace; call inside a transaction."""
    for channel in Channel.objects.filter(workspace_id=alert.workspace_id, enabled=True):
        queue_delivery(channel, alert.dedupe_key, alert=alert)


def channel_send(channel, message, *, dedupe_key=None):
    """Queue `message` ({"title", "body", "kind", …}) to the channel: how other apps push
    to alert channels. With a dedupe key, sent once per dedupe window. Call in a transaction."""
    return queue_delivery(channel, dedupe_key, message=message)


def queue_delivery(channel, dedupe_key, **fields):
    """A delivery row and its job, or a row marked duplicate when the dedupe key already
    went to this channel within the window."""
    delivery = AlertDelivery.objects.create(channel=channel, workspace_id=channel.workspace_id, **fields)
    window = timedelta(seconds=policy_for(DISPATCH_QUEUE).dedupe_window or 0)
    if dedupe_key and window and not claim_dedupe(channel, dedupe_key, window):
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            status=AlertDelivery.Status.DUPLICATE, last_error=f"{dedupe_key} was sent within {window}"
        )
        return delivery
    delivery.job_id = delivery_enqueue(delivery)
    AlertDelivery.objects.filter(pk=delivery.pk).update(job_id=delivery.job_id)
    return delivery


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


def delivery_enqueue(delivery):
    return enqueue("alerts.jobs.delivery_send", delivery.pk, queue=DISPATCH_QUEUE, description=f"deliver {delivery}")


def delivery_resume(delivery):
    """Reconciler: this delivery has no live job; give it a new one."""
    reconciler.requeue(delivery, lambda: delivery_enqueue(delivery))


def delivery_resend(*, delivery):
    """Send a delivery again (an operator's choice: no dedupe), with fresh attempts."""
    if delivery.status in AlertDelivery.ACTIVE_STATUSES:
        raise ServiceError("This delivery is still being sent.", code="delivery_pending", status_code=409)
    ensure_available()
    with transaction.atomic():
        job_id = delivery_enqueue(delivery)
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            status=AlertDelivery.Status.QUEUED,
            job_id=job_id,
            attempts=0,
            last_error="",
            delivered_at=None,
            updated_at=timezone.now(),
        )


def delivery_send(*, delivery_id, job_id, last_attempt):
    """Send one delivery if `job_id` holds it. Safe to run twice: a delivered row is not sent again."""
    claimed = AlertDelivery.objects.filter(pk=delivery_id, job_id=job_id, status=AlertDelivery.Status.QUEUED).update(
        status=AlertDelivery.Status.SENDING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not claimed:
        return "nothing to do"
    delivery = AlertDelivery.objects.select_related("alert__rule", "channel").get(pk=delivery_id)
    if not delivery.channel.enabled:
        return delivery_finish(delivery, AlertDelivery.Status.FAILED, last_error="The channel is disabled.")
    try:
        channels.send(delivery.channel, message_for(delivery))
    except Exception as exc:
        # Anything unexpected is retried like a refused delivery, and its last failure
        # fails the row, so that a broken channel cannot loop through the reconciler.
        permanent = isinstance(exc, channels.DeliveryFailed) and exc.permanent
        error = str(exc) if isinstance(exc, channels.DeliveryFailed) else f"{type(exc).__name__}: {exc}"
        if permanent or last_attempt:
            return delivery_finish(delivery, AlertDelivery.Status.FAILED, last_error=error)
        delivery_finish(delivery, AlertDelivery.Status.QUEUED, last_error=error)
        raise
    return delivery_finish(delivery, AlertDelivery.Status.DELIVERED, last_error="", delivered_at=timezone.now())


def delivery_finish(delivery, status, **changes):
    AlertDelivery.objects.filter(pk=delivery.pk).update(status=status, updated_at=timezone.now(), **changes)
    log.info("delivery %s (%s): %s", delivery.pk, delivery, status)
    return status


TEST_MESSAGE = {"title": "Conveyor test message", "body": "This channel receives Conveyor's alerts.", "kind": "test"}


def message_for(delivery):
    """What a channel receives: the alert, or the message the delivery carries."""
    alert = delivery.alert
    if alert is None:
        return delivery.message or TEST_MESSAGE
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
    }


# --- channels ---------------------------------------------------------------------------


def channel_create(*, user, workspace_id=None, name, kind, url, enabled=True):
    """Returns (channel, secret): a webhook's signing secret is shown once, at creation."""
    workspace = workspace_for_write(user=user, workspace_id=workspace_id)
    secret = channels.new_webhook_secret() if kind == Channel.Kind.WEBHOOK else None
    config = {"url": url, "secret": secret} if secret else {"url": url}
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
    """Queue a test message to the channel. Returns the AlertDelivery."""
    ensure_available()
    with transaction.atomic():
        return channel_send(channel, TEST_MESSAGE)
