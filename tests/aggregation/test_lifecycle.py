"""Fetches and user actions: failed rows are failed jobs, and requeueing a failed job tries
its row again, from the queues API or the django-rq dashboard."""

import pytest

from aggregation.models import Fetch, Post, UserAction
from tests.rows import assert_registry_agrees, failed_jobs, requeue_from_dashboard, staff_client

TOKEN = "token-secret-of-alice-0123456789"


@pytest.fixture
def instant_retries(settings):
    """Two retries, at once: a burst worker runs every try."""
    policies = {name: dict(policy) for name, policy in settings.QUEUE_POLICIES.items()}
    for name in ("content-aggregation", "user-actions"):
        policies[name].update(retry_delays=[0, 0], rate_limit=None)
    settings.QUEUE_POLICIES = policies


def fetch_now(api, source_id, run_worker_burst):
    response = api.post(f"/api/v1/sources/{source_id}/fetch", {})
    assert response.status_code == 202, response.text
    run_worker_burst("content-aggregation")
    return Fetch.objects.get(pk=response.json()["id"])


def test_a_fetch_that_fails_every_try_is_a_failed_job_and_requeue_tries_it_again(
    api, staff_api, remote, source_for, run_worker_burst, instant_retries
):
    source_id = source_for("mastodon", "public")
    remote.misbehave("/api/v1/timelines/public", status=503, times=3)

    fetch = fetch_now(api, source_id, run_worker_burst)

    assert fetch.status == "failed" and fetch.attempts == 3 and "503" in fetch.last_error
    assert_registry_agrees(fetch, "content-aggregation")
    remote.add_posts("mastodon", "public", [{"content": "<p>back</p>"}])

    response = staff_api.post("/api/v1/queues/content-aggregation/requeue-failed")
    assert response.json()["requeued"] == 1
    fetch.refresh_from_db()
    assert (fetch.status, fetch.attempts, fetch.last_error) == ("queued", 0, "")
    run_worker_burst("content-aggregation")

    fetch.refresh_from_db()
    assert fetch.status == "succeeded" and fetch.attempts == 1 and fetch.new_posts == 1
    assert_registry_agrees(fetch, "content-aggregation")


def test_a_refused_fetch_fails_its_job_at_once(api, remote, source_for, run_worker_burst, instant_retries, settings):
    source_id = source_for("mastodon", "public")
    settings.ALLOW_PRIVATE_FETCH = False  # the stand-in listens on loopback

    fetch = fetch_now(api, source_id, run_worker_burst)

    assert fetch.status == "failed" and fetch.attempts == 1 and "non-public" in fetch.last_error
    assert_registry_agrees(fetch, "content-aggregation")
    assert remote.requests("/api/v1/timelines") == []


@pytest.fixture
def post_id(api, remote, source_for, run_worker_burst):
    def make(platform="mastodon", feed="public"):
        remote.add_posts(platform, feed, [{"content": "<p>act on me</p>"}])
        source_id = source_for(platform, feed)
        api.post(f"/api/v1/sources/{source_id}/fetch", {})
        run_worker_burst("content-aggregation")
        response = api.post("/api/v1/accounts/", {"instance": remote.url, "access_token": TOKEN})
        assert response.status_code == 201, response.text
        return Post.objects.get(source_id=source_id).pk

    return make


def test_a_refused_action_is_a_failed_job_and_the_dashboards_requeue_sends_it(
    api, remote, post_id, run_worker_burst, instant_retries, make_user
):
    post = post_id()
    remote.misbehave("/api/v1/statuses/", status=404, times=1)
    response = api.post(f"/api/v1/posts/{post}/actions", {"action": "boost"})
    run_worker_burst("user-actions")
    action = UserAction.objects.get(pk=response.json()["id"])
    assert action.status == "failed" and action.attempts == 1
    assert_registry_agrees(action, "user-actions")

    requeue_from_dashboard(staff_client(make_user), "user-actions", action.job_id)
    run_worker_burst("user-actions")

    action.refresh_from_db()
    assert action.status == "succeeded" and action.attempts == 1 and action.last_error == ""
    assert failed_jobs("user-actions") == {}
    assert len(remote.requests(f"/api/v1/statuses/{Post.objects.get(pk=post).remote_id}/reblog")) == 2


def test_a_lemmy_reply_cut_short_is_never_posted_again(api, remote, post_id, run_worker_burst, instant_retries):
    post = post_id("lemmy", "technology")
    response = api.post(f"/api/v1/posts/{post}/actions", {"action": "reply", "text": "Agreed."})
    # A worker was killed after the reply left: the row says it was sent, not what came back.
    UserAction.objects.filter(pk=response.json()["id"]).update(sent_at="2026-11-25T10:00:00Z")

    run_worker_burst("user-actions")

    action = UserAction.objects.get(pk=response.json()["id"])
    assert action.status == "failed" and "may have been posted" in action.last_error
    assert_registry_agrees(action, "user-actions")
    assert remote.requests("/api/v3/comment") == []


# What a worker killed mid-request may have left at each platform: the like, already taken.
LANDED_LIKES = {
    "mastodon": lambda remote_id: ("POST", f"/api/v1/statuses/{remote_id}/favourite", {}),
    "lemmy": lambda remote_id: ("POST", "/api/v3/post/like", {"post_id": int(remote_id), "score": 1}),
    "peertube": lambda remote_id: ("PUT", f"/api/v1/videos/{remote_id}/rate", {"rating": "like"}),
}
LIKE_SENT = {
    "mastodon": lambda remote_id: f"/api/v1/statuses/{remote_id}/favourite",
    "lemmy": lambda remote_id: "/api/v3/post/like",
    "peertube": lambda remote_id: f"/api/v1/videos/{remote_id}/rate",
}
FEEDS = {"mastodon": "public", "lemmy": "technology", "peertube": "instance"}


def like_cut_short(api, post, *, landed, remote):
    """A like whose worker was killed mid-request: the row says it was sent; `landed` says
    whether the instance took it before the worker died."""
    response = api.post(f"/api/v1/posts/{post.pk}/actions", {"action": "like"})
    assert response.status_code == 202, response.text
    if landed:
        method, path, body = LANDED_LIKES[post.source.platform](post.remote_id)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert remote.client.request(method, path, json=body, headers=headers).status_code < 300
    UserAction.objects.filter(pk=response.json()["id"]).update(sent_at="2026-11-25T10:00:00Z")
    return response.json()["id"]


@pytest.mark.parametrize("platform", ["mastodon", "lemmy", "peertube"])
def test_a_like_cut_short_after_it_landed_is_not_sent_again(
    api, remote, post_id, run_worker_burst, instant_retries, platform
):
    post = Post.objects.select_related("source").get(pk=post_id(platform, FEEDS[platform]))
    action_id = like_cut_short(api, post, landed=True, remote=remote)

    run_worker_burst("user-actions")

    action = UserAction.objects.get(pk=action_id)
    assert action.status == "succeeded" and action.attempts == 1
    assert len(remote.requests(LIKE_SENT[platform](post.remote_id))) == 1  # the one that landed, only
    assert_registry_agrees(action, "user-actions")


@pytest.mark.parametrize("platform", ["mastodon", "lemmy", "peertube"])
def test_a_like_cut_short_before_it_landed_is_sent(api, remote, post_id, run_worker_burst, instant_retries, platform):
    post = Post.objects.select_related("source").get(pk=post_id(platform, FEEDS[platform]))
    action_id = like_cut_short(api, post, landed=False, remote=remote)

    run_worker_burst("user-actions")

    action = UserAction.objects.get(pk=action_id)
    assert action.status == "succeeded"
    assert len(remote.requests(LIKE_SENT[platform](post.remote_id))) == 1


def test_a_like_cut_short_waits_when_the_instance_says_429_to_the_question(
    api, remote, post_id, run_worker_burst, instant_retries
):
    post = Post.objects.select_related("source").get(pk=post_id())
    action_id = like_cut_short(api, post, landed=True, remote=remote)
    remote.misbehave(f"/api/v1/statuses/{post.remote_id}", status=429, retry_after=60, times=1)

    run_worker_burst("user-actions")

    action = UserAction.objects.get(pk=action_id)
    # Still unsure whether the first try landed: it waits, and still says it was sent.
    assert action.status == "queued" and action.sent_at is not None
    assert len(remote.requests(f"/api/v1/statuses/{post.remote_id}/favourite")) == 1


def test_actions_go_to_the_accounts_instance_whatever_the_source_says(
    api, remote, post_id, run_worker_burst, instant_retries
):
    post = Post.objects.select_related("source").get(pk=post_id())
    # Another member points the source elsewhere: the token must not follow.
    type(post.source).objects.filter(pk=post.source_id).update(url=remote.url + "/evil/prefix")

    api.post(f"/api/v1/posts/{post.pk}/actions", {"action": "like"})
    run_worker_burst("user-actions")

    assert remote.requests("/evil") == []
    assert len(remote.requests(f"/api/v1/statuses/{post.remote_id}/favourite")) == 1
