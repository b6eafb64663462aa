"""Liking, boosting and replying to posts on the remote instance, in the user's name."""

import pytest

from aggregation.models import Post, UserAction
from jobs.queueing import get_queue

TOKEN = "token-secret-of-alice-0123456789"


@pytest.fixture
def post_id(api, remote, source_for, run_worker_burst):
    remote.add_posts("mastodon", "public", [{"content": "<p>act on me</p>"}])
    source_id = source_for("mastodon", "public")
    api.post(f"/api/v1/sources/{source_id}/fetch", {})
    run_worker_burst("content-aggregation")
    return Post.objects.get(source_id=source_id).pk


@pytest.fixture
def connected(api, remote):
    response = api.post("/api/v1/accounts/", {"instance": remote.url, "access_token": TOKEN})
    assert response.status_code == 201, response.text
    assert TOKEN not in response.text and response.json()["host"] == remote.host


def act(api, post_id, **body):
    return api.post(f"/api/v1/posts/{post_id}/actions", body)


def test_a_like_is_sent_once_with_the_users_token(api, remote, post_id, connected, run_worker_burst):
    first = act(api, post_id, action="like")
    second = act(api, post_id, action="like")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    run_worker_burst("user-actions")
    act(api, post_id, action="like")

    remote_id = Post.objects.get(pk=post_id).remote_id
    likes = remote.requests(f"/api/v1/statuses/{remote_id}/favourite")
    assert len(likes) == 1 and likes[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    done = api.get(first.json()["url"]).json()
    assert done["status"] == "succeeded" and done["attempt_count"] == 1
    assert TOKEN not in api.get("/api/v1/accounts/").text


def test_a_retried_reply_is_posted_once(api, remote, post_id, connected, run_worker_burst, settings):
    policies = dict(settings.QUEUE_POLICIES)
    policies["user-actions"] = {**policies["user-actions"], "retry_delays": [0]}
    settings.QUEUE_POLICIES = policies
    remote.misbehave("/api/v1/statuses", status=502, times=1)

    response = act(api, post_id, action="reply", text="Nice post!")
    run_worker_burst("user-actions")
    run_worker_burst("user-actions")

    action = UserAction.objects.get(pk=response.json()["id"])
    assert action.status == "succeeded" and action.attempts == 2 and action.remote_id
    posted = remote.requests("/api/v1/statuses")
    assert len(posted) == 2 and posted[0]["headers"]["Idempotency-Key"] == posted[1]["headers"]["Idempotency-Key"]


def test_a_refused_action_fails_without_retry(api, remote, post_id, connected, run_worker_burst):
    remote.misbehave("/api/v1/statuses/", status=404, times=5)
    response = act(api, post_id, action="boost")
    run_worker_burst("user-actions")
    action = UserAction.objects.get(pk=response.json()["id"])
    assert action.status == "failed" and "404" in action.last_error and action.attempts == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"action": "dislike"}, "action"),
        ({"action": "reply"}, "text"),
        ({"action": "like", "text": "hi"}, "text"),
        ({"action": "like", "at": 3}, "at"),
    ],
)
def test_bad_actions_are_a_400_and_queue_nothing(api, post_id, connected, body, field):
    response = act(api, post_id, **body)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert UserAction.objects.count() == 0 and get_queue("user-actions").count == 0


def test_acting_needs_an_account_on_the_instance(api, post_id):
    response = act(api, post_id, action="like")
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_remote_account"


def test_another_workspace_cannot_act_on_a_post(other_api, post_id):
    assert other_api.post(f"/api/v1/posts/{post_id}/actions", {"action": "like"}).status_code == 404


@pytest.mark.parametrize(
    "platform, target, feed, like_path, reply_path",
    [
        ("lemmy", "python", "python", "/api/v3/post/like", "/api/v3/comment"),
        ("peertube", "instance", "instance", "/api/v1/videos/", "/api/v1/videos/"),
    ],
)
def test_lemmy_and_peertube_posts_can_be_liked_and_replied_to_but_not_boosted(
    api, remote, source_for, run_worker_burst, platform, target, feed, like_path, reply_path
):
    remote.add_posts(platform, feed, [{"content": "hi"}])
    source_id = source_for(platform, target)
    api.post(f"/api/v1/sources/{source_id}/fetch", {})
    run_worker_burst("content-aggregation")
    post_id = Post.objects.get(source_id=source_id).pk
    api.post("/api/v1/accounts/", {"instance": remote.url, "access_token": TOKEN})

    assert act(api, post_id, action="boost").status_code == 400
    like = act(api, post_id, action="like").json()["id"]
    reply = act(api, post_id, action="reply", text="Thanks").json()["id"]
    run_worker_burst("user-actions")

    assert UserAction.objects.get(pk=like).status == "succeeded"
    replied = UserAction.objects.get(pk=reply)
    assert replied.status == "succeeded" and replied.remote_id
    sent = [request for request in remote.requests() if request["method"] in ("POST", "PUT")]
    assert len(sent) == 2 and all(request["headers"]["Authorization"] == f"Bearer {TOKEN}" for request in sent)


def test_a_lemmy_reply_that_may_have_been_posted_is_not_retried(api, remote, source_for, run_worker_burst):
    remote.add_posts("lemmy", "python", [{"content": "hi"}])
    source_id = source_for("lemmy", "python")
    api.post(f"/api/v1/sources/{source_id}/fetch", {})
    run_worker_burst("content-aggregation")
    api.post("/api/v1/accounts/", {"instance": remote.url, "access_token": TOKEN})
    remote.misbehave("/api/v3/comment", status=502, times=1)

    reply = act(api, Post.objects.get(source_id=source_id).pk, action="reply", text="Thanks").json()["id"]
    run_worker_burst("user-actions")

    action = UserAction.objects.get(pk=reply)
    assert action.status == "failed" and "may have been posted" in action.last_error
    assert len(remote.requests("/api/v3/comment")) == 1


def test_an_action_whose_job_redis_forgot_is_resumed_and_done_once(api, remote, post_id, connected, run_worker_burst):
    from django.utils import timezone

    from jobs.connection import get_redis
    from jobs.reconciler import reconcile

    run_worker_burst("notifications")  # the fetch's own follow-up job, so that only the action is pending
    action_id = act(api, post_id, action="like").json()["id"]
    get_redis().flushdb()
    UserAction.objects.update(updated_at=timezone.now() - timezone.timedelta(minutes=1))
    assert reconcile(grace=0) == 1
    assert reconcile(grace=0) == 0  # its new job is alive: nothing to resume
    run_worker_burst("user-actions")
    assert UserAction.objects.get(pk=action_id).status == "succeeded"
    remote_id = Post.objects.get(pk=post_id).remote_id
    assert len(remote.requests(f"/api/v1/statuses/{remote_id}/favourite")) == 1
