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
from jobs import ratelimit, reconciler, scheduling
from jobs.connection import ensure_available
from jobs.queueing import enqueue, enqueue_many
from workspaces.services import workspace_for_write, workspaces_of

from .models import Fetch, Notification, Post, RemoteAccount, Source, Subscription, UserAction
from .sources import RateLimited, Refused, module_for

log = logging.getLogger("conveyor.aggregation")

QUEUE = "content-aggregation"
UPDATED_ON_REFETCH = ["url", "author_name", "author_url", "title", "content_html", "content_text", "media", "counts"]


def sources_of(user):
    return Source.objects.filter(workspace__in=workspaces_of(user))


# --- asking for fetches -------------------------------------------------------------------


def fetch_job_options(source, delay):
    return {"queue": QUEUE, "rate_key": source.host, "delay": delay, "description": f"fetch {source.name}"}


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
    with transaction.atomic():
        fetch = new_fetch(source, user=user, trigger=trigger, delay=delay_seconds)
        fetch.save()
        fetch.job_id = enqueue("aggregation.jobs.fetch_run", fetch.pk, **fetch_job_options(source, delay_seconds))
        fetch.save(update_fields=["job_id"])
    return fetch


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
        calls = [((fetch.pk,), {"rate_key": source.host}) for fetch, source in zip(fetches, sources)]
        job_ids = enqueue_many("aggregation.jobs.fetch_run", calls, queue=QUEUE)
        for fetch, job_id in zip(fetches, job_ids):
            fetch.job_id = job_id
        Fetch.objects.bulk_update(fetches, ["job_id"])
    return fetches


# --- running a fetch ----------------------------------------------------------------------


def claim(fetch_id, job_id, current_status, **changes):
    rows = Fetch.objects.filter(pk=fetch_id, job_id=job_id, status=current_status)
    return rows.update(updated_at=timezone.now(), **changes) == 1


def fetch_run(*, fetch_id, job_id, last_attempt):
    """Run a queued fetch held by `job_id`: read what is new, store it once. Safe to run twice."""
    if not claim(
        fetch_id,
        job_id,
        Fetch.Status.QUEUED,
        status=Fetch.Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
    ):
        return "nothing to do"
    fetch = Fetch.objects.select_related("source").get(pk=fetch_id)
    source = fetch.source
    if not source.enabled:
        return finish_failed(fetch, "The source is disabled.", count_failure=False)
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
        return finish_failed(fetch, str(exc))
    except Exception as exc:
        # Network trouble, 5xx and malformed answers are retried; so is anything
        # unexpected, and its last failure fails the fetch, so a bad row cannot loop.
        record_transient_failure(fetch, describe(exc), final=last_attempt)
        raise
    new_posts = store_posts(source, result.posts)
    finish_succeeded(fetch, source, result, new_posts)
    if result.host_wait:
        ratelimit.block(ratelimit.limiter_key(QUEUE, source.host), result.host_wait)
    return f"{new_posts} new posts"


def describe(exc):
    return f"{type(exc).__name__}: {exc}"


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
    Fetch.objects.filter(pk=fetch.pk).update(
        status=Fetch.Status.SUCCEEDED,
        pages=result.pages,
        new_posts=new_posts,
        last_error="",
        finished_at=now,
        updated_at=now,
        notify_job_id=notify_job_id,
    )
    Source.objects.filter(pk=source.pk).update(
        cursor=result.cursor, last_fetched_at=now, consecutive_failures=0, last_error="", updated_at=now
    )
    log.info("fetch %s of source %s: %s new posts, %s pages", fetch.pk, source.pk, new_posts, result.pages)


def wait_for_remote(fetch, seconds):
    """The remote said 429: the fetch waits (no attempt used) and so does its whole host."""
    source = fetch.source
    ratelimit.block(ratelimit.limiter_key(QUEUE, source.host), seconds)
    with transaction.atomic():
        job_id = enqueue("aggregation.jobs.fetch_run", fetch.pk, **fetch_job_options(source, seconds))
        Fetch.objects.filter(pk=fetch.pk, status=Fetch.Status.RUNNING).update(
            status=Fetch.Status.QUEUED,
            job_id=job_id,
            attempts=F("attempts") - 1,
            run_after=timezone.now() + timedelta(seconds=seconds),
            updated_at=timezone.now(),
        )
    log.info("fetch %s: %s asked to wait %.0fs", fetch.pk, source.host, seconds)
    return f"waiting {seconds:.0f}s for {source.host}"


def record_transient_failure(fetch, message, *, final):
    if final:
        finish_failed(fetch, message)
        return
    Fetch.objects.filter(pk=fetch.pk, status=Fetch.Status.RUNNING).update(
        status=Fetch.Status.QUEUED, last_error=message, updated_at=timezone.now()
    )
    log.warning("fetch %s: transient failure, will retry: %s", fetch.pk, message)


@transaction.atomic
def finish_failed(fetch, message, *, count_failure=True):
    now = timezone.now()
    Fetch.objects.filter(pk=fetch.pk).update(
        status=Fetch.Status.FAILED, last_error=message, finished_at=now, updated_at=now
    )
    if count_failure:
        source_record_failure(fetch.source, message)
    log.warning("fetch %s of source %s failed: %s", fetch.pk, fetch.source_id, message)
    return "failed"


def source_record_failure(source, message):
    """Count a failed fetch; the Nth in a row disables the source, its error kept."""
    Source.objects.filter(pk=source.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_error=message, updated_at=timezone.now()
    )
    disabled = Source.objects.filter(
        pk=source.pk, enabled=True, consecutive_failures__gte=settings.SOURCE_MAX_FAILURES
    ).update(enabled=False)
    if disabled:
        log.warning("source %s disabled after %s failed fetches in a row", source.pk, settings.SOURCE_MAX_FAILURES)


def fetch_resume(fetch):
    """Reconciler: this fetch has no live job; give it a new one."""
    delay = max(0.0, (fetch.run_after - timezone.now()).total_seconds())
    reconciler.requeue(
        fetch, lambda: enqueue("aggregation.jobs.fetch_run", fetch.pk, **fetch_job_options(fetch.source, delay))
    )


# --- editing sources and their schedules --------------------------------------------------

POLL_PREFIX = "source-poll-"


def source_create(*, user, workspace_id=None, **fields):
    workspace = workspace_for_write(user=user, workspace_id=workspace_id)
    fields.setdefault("poll_interval", settings.SOURCE_DEFAULT_POLL_INTERVAL)
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


def source_schedule_sync(source):
    scheduling.sync_quietly(source_periodic(source), source.enabled)


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
    """Store (or replace) the user's token for an instance, encrypted."""
    workspace = workspace_for_write(user=user, workspace_id=workspace_id)
    host = urlsplit(instance_url).netloc.lower()
    account, _ = RemoteAccount.objects.update_or_create(
        user=user, host=host, defaults={"workspace": workspace, "credentials": {"access_token": access_token}}
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
    with transaction.atomic():
        user_action = UserAction.objects.create(
            workspace_id=post.workspace_id, user=user, post=post, action=action, text=text
        )
        user_action.job_id = enqueue_action(user_action)
        user_action.save(update_fields=["job_id"])
    return user_action


def enqueue_action(user_action, delay=None):
    host = user_action.post.source.host
    return enqueue(
        "aggregation.jobs.action_run",
        user_action.pk,
        queue=ACTION_QUEUE,
        rate_key=host,
        delay=delay,
        description=f"{user_action.action} post {user_action.post_id}",
    )


def action_run(*, action_id, job_id, last_attempt):
    """Do the action on the remote instance, if `job_id` holds it. Safe to run twice."""
    claimed = UserAction.objects.filter(pk=action_id, job_id=job_id, status=UserAction.Status.QUEUED).update(
        status=UserAction.Status.RUNNING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not claimed:
        return "nothing to do"
    user_action = UserAction.objects.select_related("post__source").get(pk=action_id)
    post = user_action.post
    account = RemoteAccount.objects.get(user_id=user_action.user_id, host=post.source.host)
    try:
        with new_client() as client:
            remote_id = module_for(post.source.platform).act(
                client,
                post.source.url,
                account.credentials["access_token"],
                action=user_action.action,
                status_id=post.remote_id,
                text=user_action.text,
                idempotency_key=f"conveyor-action-{user_action.pk}",
            )
    except RateLimited as exc:
        return action_wait(user_action, exc.seconds)
    except (FetchRefused, Refused) as exc:
        return action_finish(user_action, UserAction.Status.FAILED, last_error=str(exc))
    except Exception as exc:
        if not safe_to_retry(user_action, exc):
            error = f"{describe(exc)} (not retried: the reply may have been posted)"
            return action_finish(user_action, UserAction.Status.FAILED, last_error=error)
        status = UserAction.Status.FAILED if last_attempt else UserAction.Status.QUEUED
        action_finish(user_action, status, last_error=describe(exc))
        raise
    return action_finish(user_action, UserAction.Status.SUCCEEDED, remote_id=remote_id, last_error="")


def safe_to_retry(user_action, exc):
    """Likes are idempotent everywhere, Mastodon replies carry an Idempotency-Key; a
    Lemmy or PeerTube reply is retried only if the request never reached the instance,
    so that it cannot be posted twice."""
    if user_action.action != UserAction.Action.REPLY or user_action.post.source.platform == Source.Platform.MASTODON:
        return True
    return isinstance(exc, httpx.ConnectError)


def action_finish(user_action, status, **changes):
    done = status in (UserAction.Status.SUCCEEDED, UserAction.Status.FAILED)
    UserAction.objects.filter(pk=user_action.pk).update(
        status=status, updated_at=timezone.now(), finished_at=timezone.now() if done else None, **changes
    )
    log.info("action %s (%s post %s): %s", user_action.pk, user_action.action, user_action.post_id, status)
    return status


def action_wait(user_action, seconds):
    ratelimit.block(ratelimit.limiter_key(ACTION_QUEUE, user_action.post.source.host), seconds)
    with transaction.atomic():
        job_id = enqueue_action(user_action, delay=seconds)
        UserAction.objects.filter(pk=user_action.pk).update(
            status=UserAction.Status.QUEUED, job_id=job_id, attempts=F("attempts") - 1, updated_at=timezone.now()
        )
    return f"waiting {seconds:.0f}s"


def action_resume(user_action):
    """Reconciler: this action has no live job; give it a new one."""
    reconciler.requeue(user_action, lambda: enqueue_action(user_action))
