"""Subscriptions and notifications of new posts."""

import pytest

from aggregation.models import Fetch, Notification
from jobs import reconciler
from jobs.connection import get_redis


@pytest.fixture
def subscribed(api):
    def subscribe(kind, value):
        response = api.post("/api/v1/subscriptions/", {"kind": kind, "value": value})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return subscribe


def fetch(api, source_id, run_worker_burst):
    assert api.post(f"/api/v1/sources/{source_id}/fetch", {}).status_code == 202
    run_worker_burst("content-aggregation", "notifications")


def test_new_matching_posts_notify_their_subscriber_once(api, remote, source_for, subscribed, run_worker_burst):
    subscribed("keyword", "Django")
    subscribed("account", "carol")
    remote.add_posts(
        "mastodon",
        "public",
        [
            {"content": "<p>I love django</p>", "author": "bob"},
            {"content": "<p>rust all day</p>", "author": "bob"},
            {"content": "<p>hello</p>", "author": "carol"},
        ],
    )
    source_id = source_for("mastodon", "public")

    fetch(api, source_id, run_worker_burst)
    fetch(api, source_id, run_worker_burst)

    listing = api.get("/api/v1/notifications/").json()
    texts = sorted(item["post"]["content_text"] for item in listing["results"])
    assert texts == ["I love django", "hello"]
    assert Notification.objects.count() == 2


def test_notifications_are_marked_read_and_filtered(api, other_api, remote, source_for, subscribed, run_worker_burst):
    subscribed("keyword", "news")
    remote.add_posts("mastodon", "public", [{"content": "news one"}, {"content": "news two"}])
    fetch(api, source_for("mastodon", "public"), run_worker_burst)
    first = api.get("/api/v1/notifications/").json()["results"][0]["id"]

    assert api.post("/api/v1/notifications/read", {"ids": [first]}).json() == {"marked_read": 1}
    assert api.get("/api/v1/notifications/", params={"unread": "true"}).json()["count"] == 1
    assert other_api.get("/api/v1/notifications/").json()["count"] == 0
    assert other_api.post("/api/v1/notifications/read", {}).json() == {"marked_read": 0}
    assert api.post("/api/v1/notifications/read", {}).json() == {"marked_read": 1}
    assert api.post("/api/v1/notifications/read", {"ids": "all"}).status_code == 400


def test_a_lost_notification_job_is_enqueued_again(api, remote, source_for, subscribed, run_worker_burst):
    subscribed("keyword", "lost")
    remote.add_posts("mastodon", "public", [{"content": "lost and found"}])
    source_id = source_for("mastodon", "public")
    api.post(f"/api/v1/sources/{source_id}/fetch", {})
    run_worker_burst("content-aggregation")
    get_redis().flushdb()  # the notifications job is gone

    Fetch.objects.update(updated_at=Fetch.objects.get().updated_at.replace(year=2000))
    assert reconciler.reconcile(grace=5) == 1
    run_worker_burst("notifications")
    assert Notification.objects.count() == 1


def test_a_duplicate_subscription_is_a_400(api, subscribed):
    subscribed("keyword", "x")
    response = api.post("/api/v1/subscriptions/", {"kind": "keyword", "value": "x"})
    assert response.status_code == 400 and "value" in response.json()["error"]["fields"]
    assert api.post("/api/v1/subscriptions/", {"kind": "mood", "value": "x"}).status_code == 400


def test_subscriptions_with_a_channel_push_matching_posts_there_once(
    api, other_api, remote, source_for, run_worker_burst
):
    import json

    from tests.fakes.outside_fake import OUTSIDE_HOST, Outside

    with Outside() as outside:

        def channel(client):
            body = {"name": "posts", "kind": "apprise", "url": f"json://{OUTSIDE_HOST}:{outside.port}/hook/posts"}
            return client.post("/api/v1/channels/", body).json()["id"]

        mine, theirs = channel(api), channel(other_api)
        refused = api.post("/api/v1/subscriptions/", {"kind": "keyword", "value": "django", "channel": theirs})
        assert refused.status_code == 400 and "channel" in refused.json()["error"]["fields"]
        for kind, value in (("keyword", "django"), ("account", "bob")):  # both match the same post
            assert (
                api.post("/api/v1/subscriptions/", {"kind": kind, "value": value, "channel": mine}).status_code == 201
            )
        remote.add_posts(
            "mastodon",
            "public",
            [
                {"content": "<p>I love django</p>", "author": "bob"},
                {"content": "<p>rust all day</p>", "author": "eve"},
            ],
        )
        assert api.post(f"/api/v1/sources/{source_for('mastodon', 'public')}/fetch", {}).status_code == 202
        run_worker_burst("content-aggregation", "notifications", "alerts-dispatch")

        [call] = outside.hook_calls("posts")
        assert "I love django" in json.loads(call["body"])["message"]
        assert Notification.objects.count() == 1  # one per user and post, whichever subscriptions match
