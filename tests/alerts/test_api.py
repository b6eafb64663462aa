"""The rules, alerts and channels API: bad input, secrets kept back, workspaces apart, schedules."""

import pytest
from django.db import connection

from alerts import services
from alerts.models import Alert, Channel, Rule, RuleRun
from jobs import scheduling
from jobs.connection import get_redis
from tests.alerts.conftest import page_with_price

GOOD_RULE = {"name": "price", "url": "https://shop.example.com/widget", "extractor": "css", "expression": "#price"}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"url": "ftp://shop.example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"extractor": "css", "expression": "div[["}, "expression"),
        ({"extractor": "xpath", "expression": "//*["}, "expression"),
        ({"extractor": "jsonpath", "expression": "$.[["}, "expression"),
        ({"extractor": "regex", "expression": "(unclosed"}, "expression"),
        ({"extractor": "soup"}, "extractor"),
        ({"fetch_mode": "telnet"}, "fetch_mode"),
        ({"interval": 5}, "interval"),
        ({"interval": "60"}, "interval"),
        ({"cron": "every day"}, "cron"),
        ({"ignore_patterns": ["(x"]}, "ignore_patterns"),
        ({"ignore_patterns": "x"}, "ignore_patterns"),
        ({"headers": {"X-Token": "a\r\nInjected: 1"}}, "headers"),
        ({"headers": {"Host": "evil"}}, "headers"),
        ({"error_threshold": 0}, "error_threshold"),
        ({"priority": "urgent"}, "priority"),
        ({"workspace": 999999}, "workspace"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_rules_are_refused_and_nothing_is_stored(change, field, api):
    response = api.post("/api/v1/rules/", {**GOOD_RULE, **change})
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["fields"], response.json()
    assert not Rule.objects.exists()


def test_bad_updates_change_nothing(api):
    rule = api.post("/api/v1/rules/", GOOD_RULE).json()
    response = api.client.patch(f"/api/v1/rules/{rule['id']}", json={"expression": "div[[", "name": "renamed"})
    assert response.status_code == 400
    assert Rule.objects.get().name == "price" and Rule.objects.get().expression == "#price"


def test_request_headers_are_write_only(api):
    body = {**GOOD_RULE, "headers": {"Authorization": "Bearer very-secret-token", "Accept-Language": "en"}}
    rule = api.post("/api/v1/rules/", body).json()
    assert rule["header_names"] == ["Accept-Language", "Authorization"]
    listed = api.get("/api/v1/rules/").text + api.get(f"/api/v1/rules/{rule['id']}").text
    assert "very-secret-token" not in listed and "very-secret-token" not in str(rule)
    with connection.cursor() as cursor:  # the column is encrypted at rest
        cursor.execute("SELECT headers FROM alerts_rule")
        [(stored,)] = cursor.fetchall()
    assert stored and "very-secret-token" not in stored and "Authorization" not in stored
    assert Rule.objects.get().headers["Authorization"] == "Bearer very-secret-token"


def test_run_requests_are_validated(api):
    rule = api.post("/api/v1/rules/", GOOD_RULE).json()
    for body in ({"force_mode": "ftp"}, {"debug": "maybe"}, {"later": True}):
        response = api.post(f"/api/v1/rules/{rule['id']}/run", body)
        assert response.status_code == 400, (body, response.text)
    assert not RuleRun.objects.exists()
    accepted = api.post(f"/api/v1/rules/{rule['id']}/run", {"force_mode": "headless", "debug": True})
    assert accepted.status_code == 202 and accepted.headers["Location"].endswith(
        f"/api/v1/runs/{accepted.json()['run']}"
    )
    assert RuleRun.objects.get().fetch_mode == "headless"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kind": "apprise", "url": "nonsense://what"}, "url"),
        ({"kind": "apprise"}, "url"),
        ({"kind": "webhook", "url": "ftp://example.com/"}, "url"),
        ({"kind": "webhook", "url": "http://169.254.169.254/hook"}, "url"),
        ({"kind": "pigeon", "url": "json://example.com/"}, "kind"),
        ({"kind": "apprise", "url": "json://example.com/", "secret": "mine"}, "secret"),
    ],
)
def test_bad_channels_are_refused(body, field, api, settings):
    settings.ALLOW_PRIVATE_FETCH = False
    response = api.post("/api/v1/channels/", {"name": "c", **body})
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["fields"]
    assert not Channel.objects.exists()


def test_channel_urls_are_never_shown_back(api):
    url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts"
    created = api.post("/api/v1/channels/", {"name": "slack", "kind": "apprise", "url": url})
    assert created.status_code == 201 and created.json()["service"] == "Slack"
    everything = (
        created.text + api.get("/api/v1/channels/").text + api.get(f"/api/v1/channels/{created.json()['id']}").text
    )
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in everything
    assert Channel.objects.get().config == {"url": url}
    changed = api.client.patch(f"/api/v1/channels/{created.json()['id']}", json={"kind": "webhook"})
    assert changed.status_code == 400


def test_workspaces_do_not_see_each_others_rules_alerts_or_channels(
    api, other_api, outside, rule_for, channel_for, run_rule
):
    rule = rule_for(outside.set_page("mine", page_with_price("$ 1")))
    channel = channel_for("mine")
    run_rule(rule["id"])
    outside.set_page("mine", page_with_price("$ 2"))
    run = run_rule(rule["id"])
    assert Alert.objects.count() == 1

    for path in (
        f"/api/v1/rules/{rule['id']}",
        f"/api/v1/rules/{rule['id']}/runs/",
        f"/api/v1/rules/{rule['id']}/snapshots/",
        f"/api/v1/runs/{run['id']}",
        f"/api/v1/alerts/{Alert.objects.get().pk}",
        f"/api/v1/channels/{channel['id']}",
    ):
        assert other_api.get(path).status_code == 404, path
    for path in ("/api/v1/rules/", "/api/v1/alerts/", "/api/v1/channels/"):
        assert other_api.get(path).json()["results"] == [], path
    assert other_api.post(f"/api/v1/rules/{rule['id']}/run").status_code == 404
    assert other_api.post(f"/api/v1/channels/{channel['id']}/test").status_code == 404
    assert other_api.client.delete(f"/api/v1/rules/{rule['id']}").status_code == 404
    assert other_api.client.patch(f"/api/v1/channels/{channel['id']}", json={"name": "x"}).status_code == 404
    assert Rule.objects.filter(pk=rule["id"]).exists() and Channel.objects.get().name == "mine"


def test_alert_filters_are_validated(api):
    assert api.get("/api/v1/alerts/?kind=everything").status_code == 400
    assert api.get("/api/v1/alerts/?rule=abc").status_code == 400
    assert api.get("/api/v1/alerts/?kind=error").status_code == 200


def test_endpoints_need_a_token(live_server, api):
    import httpx

    for path in ("/api/v1/rules/", "/api/v1/alerts/", "/api/v1/channels/"):
        assert httpx.get(live_server.url + path).status_code in (401, 403)


def scheduled(rule_id):
    scheduler = scheduling.get_scheduler()
    job_id = services.check_job_id(rule_id)
    return scheduling.timing_of(scheduler, job_id) if job_id in scheduler else None


def test_schedules_follow_every_edit_at_once(api):
    rule = api.post("/api/v1/rules/", {**GOOD_RULE, "interval": 300}).json()
    assert scheduled(rule["id"]) == "every 300s"
    api.client.patch(f"/api/v1/rules/{rule['id']}", json={"interval": 600})
    assert scheduled(rule["id"]) == "every 600s"
    api.client.patch(f"/api/v1/rules/{rule['id']}", json={"cron": "*/5 * * * *"})
    assert scheduled(rule["id"]) == "cron */5 * * * *"
    api.client.patch(f"/api/v1/rules/{rule['id']}", json={"enabled": False})
    assert scheduled(rule["id"]) is None
    api.client.patch(f"/api/v1/rules/{rule['id']}", json={"enabled": True})
    assert scheduled(rule["id"]) == "cron */5 * * * *"
    assert api.client.delete(f"/api/v1/rules/{rule['id']}").status_code == 204
    assert scheduled(rule["id"]) is None


def test_schedules_come_back_after_redis_forgets_and_are_spread_by_jitter(api):
    rules = [api.post("/api/v1/rules/", {**GOOD_RULE, "name": f"r{n}", "interval": 3600}).json() for n in range(20)]
    get_redis().flushdb()
    scheduler = scheduling.get_scheduler()
    scheduling.sync_provider(scheduler, services.CHECK_PREFIX, services.rule_schedules)
    due = [score for _, score in scheduler.connection.zrange(scheduler.scheduled_jobs_key, 0, -1, withscores=True)]
    assert len(due) == len(rules)
    assert max(due) - min(due) > 600, "twenty rules on an hour's interval should not all fire together"
