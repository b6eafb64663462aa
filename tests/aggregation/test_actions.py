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
    assert done["status"] == "succeeded" and done["attempts"] == 1
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
