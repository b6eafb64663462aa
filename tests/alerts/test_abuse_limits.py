"""What bounds a hostile or careless tenant: per-user throttles on every endpoint that
enqueues, per-workspace quotas, cron held to the minimum interval, one rate limit per host
name, a cap on queue jumping, channel tests deduped. Each refusal says which limit it hit."""

import pytest

from aggregation.models import Source
from alerts.models import Channel, Rule, RuleRun
from tests.alerts.conftest import page_with_price


def throttle(settings, scope, rate):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], scope: rate},
    }


def test_test_runs_past_the_users_rate_are_a_429_naming_the_limit(api, outside, rule_for, settings):
    rule = rule_for(outside.set_page("busy", page_with_price("$ 1")))
    throttle(settings, "runs", "2/minute")

    answers = [api.post(f"/api/v1/rules/{rule['id']}/run", {}) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [202, 202, 429]
    error = answers[2].json()["error"]
    assert error["code"] == "throttled" and "runs" in error["message"] and "2/minute" in error["message"]
    assert int(answers[2].headers["Retry-After"]) > 0
    assert RuleRun.objects.count() == 2


def test_the_throttle_counts_per_user(api, other_api, outside, rule_for, settings):
    throttle(settings, "channel-tests", "1/minute")
    url = "json://127.0.0.1:9/hook"
    for client in (api, other_api):
        channel = client.post("/api/v1/channels/", {"name": "c", "kind": "apprise", "url": url}).json()
        assert client.post(f"/api/v1/channels/{channel['id']}/test").status_code == 202


@pytest.mark.parametrize(
    "setting, path, body",
    [
        ("WORKSPACE_MAX_RULES", "/api/v1/rules/", {"name": "r", "url": "http://127.0.0.1:9/", "expression": "h1"}),
        (
            "WORKSPACE_MAX_SOURCES",
            "/api/v1/sources/",
            {"name": "s", "platform": "feed", "url": "http://127.0.0.1:9/f"},
        ),
        (
            "WORKSPACE_MAX_CHANNELS",
            "/api/v1/channels/",
            {"name": "c", "kind": "apprise", "url": "json://127.0.0.1:9/h"},
        ),
    ],
)
def test_a_workspace_past_its_quota_gets_a_400_and_nothing_is_made(api, settings, setting, path, body):
    setattr(settings, setting, 2)
    settings.ALLOW_PRIVATE_FETCH = True
    made = [api.post(path, body).status_code for _ in range(3)]

    assert made[:2] == [201, 201], made
    refused = api.post(path, body)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and "limit of 2" in error["message"]
    assert len(api.get(path).json()["results"]) == 2


@pytest.mark.parametrize("cron", ["* * * * * *", "*/10 * * * * *", "* * * * *", "*/4 * * * *"])
def test_a_cron_schedule_cannot_fire_more_often_than_the_minimum_interval(api, settings, cron):
    settings.RULE_MIN_INTERVAL = 300
    body = {"name": "r", "url": "http://127.0.0.1:9/", "expression": "h1", "cron": cron}

    response = api.post("/api/v1/rules/", body)

    assert response.status_code == 400 and "cron" in response.json()["error"]["fields"]
    assert not Rule.objects.exists()
    assert api.post("/api/v1/rules/", {**body, "cron": "*/5 * * * *"}).status_code == 201


def test_a_source_cron_with_seconds_is_refused(api):
    body = {"name": "s", "platform": "feed", "url": "http://127.0.0.1:9/f", "poll_cron": "* * * * * */5"}
    response = api.post("/api/v1/sources/", body)
    assert response.status_code == 400 and "poll_cron" in response.json()["error"]["fields"]


def test_rate_limits_are_keyed_by_host_name_alone():
    keys = {
        Source(url=url).rate_key
        for url in ("https://a@example.com/x", "https://b@Example.com:8443/", "https://example.com")
    }
    assert keys == {"example.com"}


def test_test_runs_jump_the_queue_only_up_to_the_hourly_cap(api, outside, rule_for, settings):
    settings.RULE_FRONT_RUNS_PER_HOUR = 2
    rule = rule_for(outside.set_page("jump", page_with_price("$ 1")))
    assert [api.post(f"/api/v1/rules/{rule['id']}/run", {}).status_code for _ in range(2)] == [202, 202]

    refused = api.post(f"/api/v1/rules/{rule['id']}/run", {})

    assert refused.status_code == 429 and refused.json()["error"]["code"] == "front_of_queue_limit"
    assert RuleRun.objects.count() == 2


def test_a_high_priority_rules_scheduled_runs_stop_jumping_the_queue_at_the_cap(api, outside, rule_for, settings):
    from alerts import services

    settings.RULE_FRONT_RUNS_PER_HOUR = 1
    rule = Rule.objects.get(pk=rule_for(outside.set_page("hi", page_with_price("$ 1")), priority="high")["id"])

    first = services.run_create(rule, trigger=RuleRun.Trigger.SCHEDULE)
    RuleRun.objects.filter(pk=first.pk).update(status="succeeded")
    second = services.run_create(rule, trigger=RuleRun.Trigger.SCHEDULE)

    assert (first.at_front, second.at_front) == (True, False)


def test_a_second_channel_test_within_the_window_is_a_429(api, run_worker_burst):
    channel = api.post("/api/v1/channels/", {"name": "c", "kind": "apprise", "url": "json://127.0.0.1:9/h"}).json()
    assert api.post(f"/api/v1/channels/{channel['id']}/test").status_code == 202

    again = api.post(f"/api/v1/channels/{channel['id']}/test")

    assert again.status_code == 429 and again.json()["error"]["code"] == "channel_test_deduped"
    assert Channel.objects.get().deliveries.count() == 1


def test_requests_at_once_cannot_all_take_the_last_places_of_a_throttle(api, outside, rule_for, settings):
    from concurrent.futures import ThreadPoolExecutor

    rule = rule_for(outside.set_page("racing", page_with_price("$ 1")))
    throttle(settings, "runs", "3/minute")

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: api.post(f"/api/v1/rules/{rule['id']}/run", {}).status_code, range(30)))

    assert sorted(answers) == [202] * 3 + [429] * 27
    assert RuleRun.objects.count() == 3
