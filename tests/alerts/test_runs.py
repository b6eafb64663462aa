"""Rule runs end to end: a real target server, real workers, alerts to a real webhook receiver."""

import json

import pytest

from alerts.models import Alert, AlertDelivery, Rule, RuleRun, Snapshot
from tests.alerts.conftest import page_with_price
from tests.conftest import wait_for


def test_a_change_is_detected_once_and_delivered(api, outside, rule_for, channel_for, run_rule):
    url = outside.set_page("shop", page_with_price("$ 10.00"))
    rule = rule_for(url)
    channel_for("ops")

    baseline = run_rule(rule["id"])
    assert baseline["status"] == "succeeded" and baseline["changed"] is False and baseline["http_status"] == 200
    assert run_rule(rule["id"])["changed"] is False  # the same content: no alert

    outside.set_page("shop", page_with_price("$ 12.00"))
    changed = run_rule(rule["id"])
    assert changed["changed"] is True
    assert run_rule(rule["id"])["changed"] is False  # still $12: nothing new

    alerts = api.get("/api/v1/alerts/").json()["results"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["kind"] == "change" and "-$ 10.00" in alert["diff"] and "+$ 12.00" in alert["diff"]
    assert [delivery["status"] for delivery in alert["deliveries"]] == ["delivered"]
    calls = outside.hook_calls("ops")
    assert len(calls) == 1
    sent = json.loads(calls[0]["body"])
    assert sent["title"] == "watched changed" and "+$ 12.00" in sent["message"]
    snapshots = api.get(f"/api/v1/rules/{rule['id']}/snapshots/").json()["results"]
    assert [snapshot["text"] for snapshot in snapshots] == ["$ 12.00", "$ 10.00"]


def test_white_space_and_blank_lines_alone_raise_no_alert(api, outside, rule_for, channel_for, run_rule):
    url = outside.set_page("spaces", "<ul id='l'><li>red</li><li>blue</li></ul>")
    rule = rule_for(url, "#l", collapse_whitespace=False)
    channel_for("ops")
    run_rule(rule["id"])
    outside.set_page("spaces", "<ul id='l'>\n\n   <li>  red</li>\n\n\t<li>blue  </li>\n</ul>")
    assert run_rule(rule["id"])["changed"] is False
    assert Alert.objects.count() == 0 and outside.hook_calls("ops") == []
    assert Snapshot.objects.filter(rule_id=rule["id"]).count() == 1


PAGES = {
    "css": ("<div class='p'>1</div>", "<div class='p'>2</div>", ".p"),
    "xpath": ("<p><b>old</b></p>", "<p><b>new</b></p>", "//p/b/text()"),
    "jsonpath": ('{"items": [{"price": 1}]}', '{"items": [{"price": 2}]}', "$.items[*].price"),
    "regex": ("<p>Stock: 5 left</p>", "<p>Stock: 4 left</p>", r"Stock: \d+"),
}


@pytest.mark.parametrize("extractor", sorted(PAGES))
def test_each_extractor_detects_a_change_in_its_part_only(extractor, api, outside, rule_for, run_rule):
    before, after, expression = PAGES[extractor]
    content_type = "application/json" if extractor == "jsonpath" else "text/html"
    url = outside.set_page(extractor, before, content_type=content_type)
    rule = rule_for(url, expression, extractor=extractor)
    assert run_rule(rule["id"])["status"] == "succeeded"
    outside.set_page(extractor, after, content_type=content_type)
    assert run_rule(rule["id"])["changed"] is True
    alert = Alert.objects.get(rule_id=rule["id"])
    changed_lines = [line[0] for line in alert.diff.splitlines()[2:] if line[:1] in "+-"]
    assert changed_lines == ["-", "+"], alert.diff


def test_debug_run_keeps_what_was_fetched_and_extracted(outside, rule_for, run_rule):
    rule = rule_for(outside.set_page("dbg", page_with_price("$ 3")))
    run = run_rule(rule["id"], debug=True)
    assert run["debug"] is True
    assert run["debug_output"]["extracted"] == "$ 3"
    assert "<div id='price'>$ 3</div>" in run["debug_output"]["fetched"]
    assert run_rule(rule["id"])["debug_output"] is None


def test_failing_rule_raises_one_error_alert_then_one_recovery(api, outside, rule_for, channel_for, run_rule):
    url = outside.set_page("gone", "missing", status=404)
    rule = rule_for(url, error_threshold=3)
    channel_for("ops")
    runs = [run_rule(rule["id"]) for _ in range(5)]
    assert [run["status"] for run in runs] == ["failed"] * 5
    assert all("answered 404" in run["error"] for run in runs)
    assert [run["attempt_count"] for run in runs] == [1] * 5  # a 404 is not retried

    errors = Alert.objects.filter(rule_id=rule["id"], kind=Alert.Kind.ERROR)
    assert errors.count() == 1 and errors.get().run_id == runs[2]["id"]
    assert len(outside.hook_calls("ops")) == 1
    assert api.get(f"/api/v1/rules/{rule['id']}").json()["consecutive_errors"] == 5

    outside.set_page("gone", page_with_price("$ 1"))
    assert run_rule(rule["id"])["status"] == "succeeded"
    assert Rule.objects.get(pk=rule["id"]).consecutive_errors == 0
    recovered = Alert.objects.get(rule_id=rule["id"], kind=Alert.Kind.RECOVERED)
    assert recovered.title == "watched works again" and len(outside.hook_calls("ops")) == 2
    run_rule(rule["id"])
    assert Alert.objects.filter(kind=Alert.Kind.RECOVERED).count() == 1  # said once
    outside.set_page("gone", "missing", status=404)
    for _ in range(3):
        run_rule(rule["id"])
    assert errors.count() == 2  # a new streak, a new alert


def test_a_selector_that_matches_nothing_is_an_error_not_a_blank_change(outside, rule_for, run_rule):
    rule = rule_for(outside.set_page("moved", page_with_price("$ 5")))
    run_rule(rule["id"])
    outside.set_page("moved", "<html><body><p>redesigned</p></body></html>")
    run = run_rule(rule["id"])
    assert run["status"] == "failed" and "matched nothing" in run["error"]
    assert not Alert.objects.filter(kind=Alert.Kind.CHANGE).exists()


def test_transient_failures_are_retried_after_the_configured_delays(
    api, outside, rule_for, processes, fast_alert_policies
):
    url = outside.set_page("flaky", page_with_price("$ 7"), fail_times=2, fail_status=503)
    rule = rule_for(url)
    processes.worker("rules-run", env={"CONVEYOR_QUEUE_RULES_RUN_JSON": json.dumps(fast_alert_policies["rules-run"])})
    run_id = api.post(f"/api/v1/rules/{rule['id']}/run").json()["run"]
    wait_for(lambda: RuleRun.objects.get(pk=run_id).status == "succeeded", timeout=30, message="the run to succeed")
    run = RuleRun.objects.get(pk=run_id)
    assert run.attempts == 3
    times = [request["at"] for request in outside.requests("/page/flaky")]
    assert len(times) == 3
    # Delays of 1 s then 2 s (RQ's scheduler works in whole seconds, rounded up by us).
    assert times[1] - times[0] >= 1.0 and times[2] - times[1] >= 2.0, times


def test_retries_exhausted_fail_the_run_and_count_one_error(api, outside, rule_for, processes, fast_alert_policies):
    url = outside.set_page("down", "x", fail_times=10, fail_status=502)
    rule = rule_for(url)
    processes.worker("rules-run", env={"CONVEYOR_QUEUE_RULES_RUN_JSON": json.dumps(fast_alert_policies["rules-run"])})
    run_id = api.post(f"/api/v1/rules/{rule['id']}/run").json()["run"]
    wait_for(lambda: RuleRun.objects.get(pk=run_id).status == "failed", timeout=30, message="the run to fail")
    assert RuleRun.objects.get(pk=run_id).attempts == 3
    assert "answered 502" in RuleRun.objects.get(pk=run_id).error
    assert Rule.objects.get(pk=rule["id"]).consecutive_errors == 1


def test_failed_deliveries_are_retried_and_recorded(
    api, outside, rule_for, channel_for, processes, fast_alert_policies
):
    channel = channel_for("sometimes")
    outside.fail_hook("sometimes", 2)
    processes.worker(
        "alerts-dispatch",
        env={
            "CONVEYOR_QUEUE_ALERTS_DISPATCH_JSON": json.dumps(fast_alert_policies["alerts-dispatch"]),
        },
    )
    response = api.post(f"/api/v1/channels/{channel['id']}/test")
    assert response.status_code == 202, response.text
    delivery_id = response.json()["delivery"]["id"]
    wait_for(lambda: AlertDelivery.objects.get(pk=delivery_id).status == "delivered", timeout=30, message="delivery")
    delivery = AlertDelivery.objects.get(pk=delivery_id)
    assert delivery.attempts == 3 and delivery.delivered_at is not None
    assert len(outside.hook_calls("sometimes")) == 3


def test_editing_what_a_rule_watches_starts_a_new_baseline(api, outside, rule_for, channel_for, run_rule):
    url = outside.set_page("edit", page_with_price("$ 10", "<p class='stock'>3 left</p>"))
    rule = rule_for(url)
    channel_for("ops")
    run_rule(rule["id"])
    api.client.patch(f"/api/v1/rules/{rule['id']}", json={"expression": ".stock"})
    assert run_rule(rule["id"])["changed"] is False  # "$ 10" → "3 left" is the edit, not a change
    api.client.patch(f"/api/v1/rules/{rule['id']}", json={"name": "renamed", "interval": 600})
    outside.set_page("edit", page_with_price("$ 10", "<p class='stock'>2 left</p>"))
    assert run_rule(rule["id"])["changed"] is True  # a name or schedule edit keeps the baseline
    assert Alert.objects.count() == 1 and outside.hook_calls("ops")


def test_a_run_that_read_the_rule_before_an_edit_does_not_set_the_new_baseline(api, outside, rule_for, run_rule):
    """A run extracts with the rule as it claimed it; when the rule is edited meanwhile, the
    text it found belongs to the old revision, same or not: no alert, no baseline; the next
    run sets the new baseline."""
    from alerts import services

    url = outside.set_page("racing-edit", page_with_price("$ 10", "<p class='stock'>3 left</p>"))
    rule = rule_for(url)
    run_rule(rule["id"])
    as_claimed = Rule.objects.get(pk=rule["id"])
    api.client.patch(f"/api/v1/rules/{rule['id']}", json={"expression": ".stock"})

    same = services.compare_and_store(as_claimed, RuleRun(rule=as_claimed), "$ 10")
    other = services.compare_and_store(as_claimed, RuleRun(rule=as_claimed), "$ 12")

    assert same[0] is False and same[1].revision == 1
    assert other[0] is False and other[1].revision == 1
    assert not Snapshot.objects.filter(rule_id=rule["id"], revision=2).exists()
    assert run_rule(rule["id"])["changed"] is False  # the new revision's baseline: "3 left"
    assert list(Snapshot.objects.filter(rule_id=rule["id"], revision=2).values_list("text", flat=True)) == ["3 left"]
    assert Alert.objects.count() == 0
