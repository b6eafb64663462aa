"""Every write to sources, fetches and posts.

A fetch is a row: asked for by a user (perhaps delayed) or by the schedule, then run by
one job that claims it. Posts are upserted in bulk, once per (source, remote id).
"""

import logging
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ServiceError
from core.outbound import FetchRefused, new_client
from jobs import lifecycle, metrics, platform_events, ratelimit, scheduling
from jobs.connection import ensure_available
from jobs.queueing import enqueue
from workspaces.services import within_quota, workspace_for_write, workspaces_of

from .models import Fetch, Notification, Post, RemoteAccount, Source, Subscription, UserAction
from .sources import RateLimited, Refused, module_for

log = logging.getLogger("conveyor.aggregation")

QUEUE = "content-aggregation"
UPDATED_ON_REFETCH = ["url", "author_name", "author_url", "title", "content_html", "content_text", "media", "counts"]


def sources_of(user):
    return Source.objects.filter(workspace__in=workspaces_of(user))


# --- asking for fetches -------------------------------------------------------------------


def fetch_job_options(fetch):
    """A fetch waits for its run_after and counts against its host's limit."""
    delay = max(0.0, (fetch.run_after - timezone.now()).total_seconds())
    return {"rate_key": fetch.source.rate_key, "delay": delay, "description": f"fetch {fetch.source.name}"}


def new_fetch(source, *, user=None, trigger=Fetch.Trigger.MANUAL, delay=0):
    return Fetch(
        source=source,
        workspace_id=source.workspace_id,
        trigger=trigger,
        requested_by=user,
        run_after=timezone.now() + timedelta(seconds=delay),
    )


def source_fetch(*, user, source, delay_seconds=0, trigger=Fetch.Trigger.MANUAL):
    """Queue one fetch of the source, to run after `delay_seconds`. Returns the Fetch."""
    if not source.enabled:
        raise ServiceError("This source is disabled; enable it first.", code="source_disabled", status_code=409)
    ensure_available()
    return lifecycle.start(FETCH, new_fetch(source, user=user, trigger=trigger, delay=delay_seconds))


def sources_fetch_bulk(*, user, source_ids):
    """Queue one fetch for each source, all pushed to Redis in one batch."""
    sources = list(sources_of(user).filter(id__in=source_ids))
    missing = sorted(set(source_ids) - {source.pk for source in sources})
    if missing:
        raise ServiceError("Unknown sources.", fields={"ids": [f"No such source: {pk}." for pk in missing]})
    disabled = [source.pk for source in sources if not source.enabled]
    if disabled:
        raise ServiceError("Disabled sources.", fields={"ids": [f"Source {pk} is disabled." for pk in disabled]})
    ensure_available()
    with transaction.atomic():
        fetches = Fetch.objects.bulk_create([new_fetch(source, user=user) for source in sources])
        return lifecycle.start_many(FETCH, fetches)


# --- running a fetch ----------------------------------------------------------------------


def fetch_run(fetch):
    """Run a fetch its job holds: read what is new since the cursor, store each post once."""
    source = fetch.source
    if not source.enabled:
        raise lifecycle.PermanentFailure("The source is disabled.", counted=False)
    try:
        with new_client() as client:
            result = module_for(source.platform).fetch(
                client,
                source,
                source.cursor,
                max_pages=settings.SOURCE_MAX_PAGES,
                page_size=settings.SOURCE_PAGE_SIZE,
            )
    except RateLimited as exc:
        return wait_for_remote(fetch, exc.seconds)
    except (FetchRefused, Refused, ValueError) as exc:
        raise lifecycle.PermanentFailure(str(exc)) from None
    # Anything else (network trouble, 5xx, a malformed answer) is retried by the lifecycle.
    new_posts = store_posts(source, result.posts)
    finish_succeeded(fetch, source, result, new_posts)
    if result.host_wait:
        ratelimit.block(ratelimit.limiter_key(QUEUE, source.rate_key), result.host_wait)
    return f"{new_posts} new posts"


def store_posts(source, posts):
    """Upsert in bulk: a post already stored is updated (counts change), never duplicated."""
    if not posts:
        return 0
    remote_ids = [post.remote_id for post in posts]
    known = set(Post.objects.filter(source=source, remote_id__in=remote_ids).values_list("remote_id", flat=True))
    unique = {post.remote_id: post for post in posts}
    Post.objects.bulk_create(
        [Post(source=source, workspace_id=source.workspace_id, **vars(post)) for post in unique.values()],
        update_conflicts=True,
        unique_fields=["source", "remote_id"],
        update_fields=UPDATED_ON_REFETCH,
        batch_size=500,
    )
    return len(set(unique) - known)


@transaction.atomic
def finish_succeeded(fetch, source, result, new_posts):
    now = timezone.now()
    notify_job_id = enqueue_notify(fetch) if new_posts else ""
    lifecycle.succeed(FETCH, fetch, fetch.job_id, pages=result.pages, new_posts=new_posts, notify_job_id=notify_job_id)
    Source.objects.filter(pk=source.pk).update(
        cursor=result.cursor, last_fetched_at=now, consecutive_failures=0, last_error="", updated_at=now
    )
    log.info("fetch %s of source %s: %s new posts, %s pages", fetch.pk, source.pk, new_posts, result.pages)


def wait_for_remote(fetch, seconds):
    """The remote said 429: the fetch waits (no attempt used) and so does its whole host."""
    source = fetch.source
    ratelimit.block(ratelimit.limiter_key(QUEUE, source.rate_key), seconds)
    lifecycle.wait(FETCH, fetch, fetch.job_id, seconds, run_after=timezone.now() + timedelta(seconds=seconds))
    log.info("fetch %s: %s asked to wait %.0fs", fetch.pk, source.host, seconds)
    return f"waiting {seconds:.0f}s for {source.host}"


def source_record_failure(fetch, message):
    """Count a failed fetch; the Nth in a row disables the source, its error kept."""
    source_id = fetch.source_id
    Source.objects.filter(pk=source_id).update(
        consecutive_failures=F("consecutive_failures") + 1, last_error=message, updated_at=timezone.now()
    )
    disabled = Source.objects.filter(
        pk=source_id, enabled=True, consecutive_failures__gte=settings.SOURCE_MAX_FAILURES
    ).update(enabled=False)
    if disabled:
        log.warning("source %s disabled after %s failed fetches in a row", source_id, settings.SOURCE_MAX_FAILURES)
        platform_events.emit(disabled_event(fetch, message))


def disabled_event(fetch, message):
    """What its workspace's platform routes hear when the fetch disabled its source."""
    source = fetch.source
    return platform_events.RowEvent(
        platform_events.SOURCE_DISABLED,
        source.workspace_id,
        title=f"Source {source.name} disabled after {settings.SOURCE_MAX_FAILURES} failed fetches in a row",
        details={
            "source": source.pk,
            "name": source.name,
            "platform": source.platform,
            "address": source.url,
            "target": source.target or "none",
            "last fetched at": platform_events.moment(source.last_fetched_at),
            "disabled at": platform_events.moment(timezone.now()),
            "last fetch": fetch.pk,
            "url": platform_events.api_url("source-detail", source.pk),
        },
        error=message,
    )


FETCH = lifecycle.Kind(
    model=Fetch,
    queue=QUEUE,
    func="aggregation.jobs.fetch_run",
    started_field="started_at",
    related=("source",),
    job_options=fetch_job_options,
    on_failed=source_record_failure,
    counts=lambda changes: {metrics.POSTS_INGESTED: changes.get("new_posts", 0)},
)


# --- editing sources and their schedules --------------------------------------------------

POLL_PREFIX = "source-poll-"


def source_create(*, user=None, workspace_id=None, workspace=None, **fields):
    """A new source, polled once committed; its workspace chosen as rule_create's is."""
    workspace = workspace or workspace_for_write(user=user, workspace_id=workspace_id)
    fields.setdefault("poll_interval", settings.SOURCE_DEFAULT_POLL_INTERVAL)
    with within_quota(workspace, workspace.sources.all(), limit=settings.WORKSPACE_MAX_SOURCES, what="sources"):
        return scheduling.save_and_resync(Source(workspace=workspace, **fields), source_periodic)


def source_update(*, source, **changes):
    """Apply changes and reschedule; enabling a source again forgets its failure streak."""
    if changes.get("enabled") and not source.enabled:
        changes.update(consecutive_failures=0, last_error="")
    for name, value in changes.items():
        setattr(source, name, value)
    return scheduling.save_and_resync(source, source_periodic)


def source_delete(*, source):
    scheduling.delete_and_unschedule(source, poll_job_id(source.pk))


def poll_job_id(source_id):
    return f"{POLL_PREFIX}{source_id}"


def source_periodic(source):
    return scheduling.Periodic(
        poll_job_id(source.pk),
        "aggregation.jobs.source_poll",
        source.poll_interval,
        queue=QUEUE,
        args=(source.pk,),
        jitter=True,
        cron=source.poll_cron,
    )


def source_schedules():
    """Every enabled source's poll, for the scheduler's periodic sync."""
    return [
        source_periodic(source)
        for source in Source.objects.filter(enabled=True).only("id", "poll_interval", "poll_cron")
    ]


def source_poll(*, source_id):
    """The schedule's turn: queue a fetch unless the source is off or one is pending."""
    source = Source.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return "source disabled or gone"
    if Fetch.objects.filter(source=source, status__in=Fetch.ACTIVE_STATUSES).exists():
        return "a fetch is already pending"
    fetch = source_fetch(user=None, source=source, trigger=Fetch.Trigger.SCHEDULE)
    return f"fetch {fetch.pk} queued"


# --- notifications ------------------------------------------------------------------------

NOTIFY_QUEUE = "notifications"


def enqueue_notify(fetch):
    return enqueue(
        "aggregation.jobs.notify_new_posts", fetch.pk, queue=NOTIFY_QUEUE, description=f"notify fetch {fetch.pk}"
    )


def notify_resume(fetch):
    """Reconciler: this fetch's new posts were never matched; enqueue the match again."""
    with transaction.atomic():
        job_id = enqueue_notify(fetch)
        updated = Fetch.objects.filter(pk=fetch.pk, notify_job_id=fetch.notify_job_id, notified_at=None).update(
            notify_job_id=job_id, updated_at=timezone.now()
        )
        if not updated:
            transaction.set_rollback(True)


def notify_new_posts(*, fetch_id):
    """Notify each subscriber of the new posts of a fetch that match them, once per post."""
    fetch = Fetch.objects.filter(pk=fetch_id, notified_at=None).first()
    if fetch is None:
        return 0
    subscriptions = list(Subscription.objects.filter(workspace_id=fetch.workspace_id).select_related("channel"))
    matches = [
        (post, subscription)
        for post in fetch.new_posts_query().select_related("source")
        for subscription in subscriptions
        if subscription.matches(post)
    ]
    notifications = [
        Notification(
            user_id=subscription.user_id, workspace_id=fetch.workspace_id, post=post, subscription=subscription
        )
        for post, subscription in matches
    ]
    with transaction.atomic():
        Notification.objects.bulk_create(notifications, ignore_conflicts=True)
        push_to_channels(matches)
        Fetch.objects.filter(pk=fetch.pk).update(notified_at=timezone.now(), updated_at=timezone.now())
    return len(notifications)


def push_to_channels(matches):
    """Subscriptions with an alert channel get each matching post there too, once per
    (channel, post) even when two subscriptions match it."""
    from alerts.services import channel_send

    for post, subscription in matches:
        channel = subscription.channel
        if channel is None or not channel.enabled:
            continue
        message = {
            "title": f"{post.source.name}: {post.title or post.author_name or 'new post'}"[:300],
            "body": f"{post.content_text[:1000]}\n\n{post.url}".strip(),
            "kind": "post",
            "post": post.pk,
            "url": post.url,
            "subscription": str(subscription),
        }
        channel_send(channel, message, dedupe_key=f"post:{post.pk}")


def subscription_create(*, user, workspace_id=None, kind, value, channel_id=None):
    workspace = workspace_for_write(user=user, workspace_id=workspace_id)
    if channel_id is not None and not workspace.channels.filter(pk=channel_id).exists():
        raise ServiceError("No such channel in this workspace.", fields={"channel": ["No such channel."]})
    subscription, created = Subscription.objects.get_or_create(
        user=user, workspace=workspace, kind=kind, value=value, defaults={"channel_id": channel_id}
    )
    if not created:
        raise ServiceError("You already have this subscription.", fields={"value": ["Already subscribed."]})
    return subscription


def notifications_mark_read(*, user, ids=None):
    """Mark the user's notifications read: those named, or all. Returns how many changed."""
    unread = Notification.objects.filter(user=user, read_at=None)
    if ids is not None:
        unread = unread.filter(id__in=ids)
    return unread.update(read_at=timezone.now())


# --- acting on posts in the user's name ---------------------------------------------------

ACTION_QUEUE = "user-actions"


def remote_account_connect(*, user, instance_url, access_token, workspace_id=None):
    """Store (or replace) the user's token for an instance, encrypted. Actions in the user's
    name go to this instance only: never to a URL that another member can edit."""
    workspace = workspace_for_write(user=user, workspace_id=workspace_id)
    parts = urlsplit(instance_url)
    host = parts.netloc.rpartition("@")[2].lower()
    account, _ = RemoteAccount.objects.update_or_create(
        user=user,
        host=host,
        defaults={
            "workspace": workspace,
            "instance_url": f"{parts.scheme}://{host}",
            "credentials": {"access_token": access_token},
        },
    )
    return account


# What each platform lets a user do: Lemmy and PeerTube have no boost.
ACTIONS = {
    Source.Platform.MASTODON: {"like", "boost", "reply"},
    Source.Platform.LEMMY: {"like", "reply"},
    Source.Platform.PEERTUBE: {"like", "reply"},
}


def post_act(*, user, post, action, text=""):
    """Queue an action on a post. Liking or boosting again returns the pending or done action."""
    if action not in ACTIONS.get(post.source.platform, ()):
        platform = post.source.get_platform_display()
        raise ServiceError(f"{platform} posts cannot be given a {action}.", fields={"action": ["Not supported here."]})
    if not RemoteAccount.objects.filter(user=user, host=post.source.host).exists():
        raise ServiceError(
            f"Connect your account on {post.source.host} first.",
            code="no_remote_account",
            fields={"action": [f"No account on {post.source.host}."]},
        )
    if action != UserAction.Action.REPLY:
        existing = (
            UserAction.objects.filter(user=user, post=post, action=action)
            .exclude(status=UserAction.Status.FAILED)
            .first()
        )
        if existing:
            return existing
    ensure_available()
    user_action = UserAction(workspace_id=post.workspace_id, user=user, post=post, action=action, text=text)
    return lifecycle.start(ACTION, user_action)


def action_job_options(user_action):
    return {
        "rate_key": user_action.post.source.rate_key,
        "description": f"{user_action.action} post {user_action.post_id}",
    }


def action_run(user_action):
    """Do the action on the remote instance in the user's name, through their account's
    instance. The request is recorded on the row before it leaves (`sent_at`), so that a
    reply that may already have been posted (a crash mid-request) is never posted twice,
    and a like or boost cut short is sent again only if the instance shows it not done."""
    post = user_action.post
    if user_action.sent_at and not retry_is_harmless(user_action):
        raise lifecycle.PermanentFailure(f"{UNSURE_REPLY}: an earlier try was cut short")
    account = RemoteAccount.objects.filter(user_id=user_action.user_id, host=post.source.host).first()
    if account is None:
        raise lifecycle.PermanentFailure(f"No account on {post.source.host} any more.")
    if user_action.sent_at:
        try:
            done = done_before(user_action, account)
        except RateLimited as exc:
            return action_wait(user_action, exc.seconds, sent_at=user_action.sent_at)  # still unsure
        except (FetchRefused, Refused) as exc:
            raise lifecycle.PermanentFailure(str(exc)) from None
        if done is not None:
            return action_succeed(user_action, done, "its earlier try had landed")
    return action_send(user_action, account)


def action_send(user_action, account):
    post = user_action.post
    lifecycle.update(ACTION, user_action, user_action.job_id, sent_at=timezone.now())
    try:
        with new_client() as client:
            remote_id = module_for(post.source.platform).act(
                client,
                account.instance_url,
                account.credentials["access_token"],
                action=user_action.action,
                status_id=post.remote_id,
                text=user_action.text,
                idempotency_key=f"conveyor-action-{user_action.pk}",
            )
    except RateLimited as exc:
        return action_wait(user_action, exc.seconds)
    except (FetchRefused, Refused) as exc:
        raise lifecycle.PermanentFailure(str(exc)) from None
    except Exception as exc:
        if isinstance(exc, httpx.ConnectError):
            lifecycle.update(ACTION, user_action, user_action.job_id, sent_at=None)  # it never left
        elif not retry_is_harmless(user_action):
            raise lifecycle.PermanentFailure(f"{lifecycle.describe(exc)} ({UNSURE_REPLY})") from None
        raise
    return action_succeed(user_action, remote_id)


def done_before(user_action, account):
    """What the instance says of an action whose earlier try was cut short after it left:
    the remote id if it shows it done, None if not (module's done_before)."""
    post = user_action.post
    with new_client() as client:
        return module_for(post.source.platform).done_before(
            client,
            account.instance_url,
            account.credentials["access_token"],
            action=user_action.action,
            status_id=post.remote_id,
        )


def action_succeed(user_action, remote_id, how="sent"):
    lifecycle.succeed(ACTION, user_action, user_action.job_id, remote_id=remote_id)
    log.info("action %s (%s post %s) done: %s", user_action.pk, user_action.action, user_action.post_id, how)
    return "succeeded"


UNSURE_REPLY = "not retried: the reply may have been posted"


def retry_is_harmless(user_action):
    """Likes and boosts are idempotent everywhere and Mastodon replies carry an
    Idempotency-Key; a Lemmy or PeerTube reply sent twice would be posted twice."""
    return user_action.action != UserAction.Action.REPLY or user_action.post.source.platform == Source.Platform.MASTODON


def action_wait(user_action, seconds, sent_at=None):
    """The instance said 429: the action waits, and so does every action on that host. The
    request was refused, not sent (`sent_at` None: a later try may send it), unless it was
    the question whether an earlier try landed, which stays open."""
    ratelimit.block(ratelimit.limiter_key(ACTION_QUEUE, user_action.post.source.rate_key), seconds)
    return lifecycle.wait(ACTION, user_action, user_action.job_id, seconds, sent_at=sent_at)


ACTION = lifecycle.Kind(
    model=UserAction,
    queue=ACTION_QUEUE,
    func="aggregation.jobs.action_run",
    related=("post__source",),
    job_options=action_job_options,
)
