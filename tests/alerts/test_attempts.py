"""Rule runs and deliveries: their attempts in the API, rule runs, changes and deliveries by
outcome in /metrics."""

import pytest

from tests.alerts.conftest import page_with_price
from tests.scrape import TOKEN, scrape, value


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def test_rule_runs_changes_and_deliveries_are_counted_and_their_attempts_shown(
    api, outside, rule_for, channel_for, run_rule, run_worker_burst, live_server, metrics_token, settings
):
    rule = rule_for(outside.set_page("shop", page_with_price("$ 10")))
    channel = channel_for("ops")
    baseline = run_rule(rule["id"])
    outside.set_page("shop", page_with_price("$ 11"))
    changed = run_rule(rule["id"])
    settings.ALLOW_PRIVATE_FETCH = False  # the channel's address is refused now: failed at once
    test_message = api.post(f"/api/v1/channels/{channel['id']}/test").json()
    run_worker_burst("alerts-dispatch")

    samples = scrape(live_server.url)
    assert value(samples, "conveyor_rows_finished_total", kind="alerts.RuleRun", status="succeeded") == 2
    assert value(samples, "conveyor_rule_changes_total") == 1
    assert value(samples, "conveyor_rows_finished_total", kind="alerts.AlertDelivery", status="delivered") == 1
    assert value(samples, "conveyor_rows_finished_total", kind="alerts.AlertDelivery", status="failed") == 1
    assert value(samples, "conveyor_rows", kind="alerts.AlertDelivery", status="failed") == 1

    assert [attempt["outcome"] for attempt in baseline["attempts"]] == ["succeeded"]
    assert changed["attempt_count"] == 1 and changed["attempts"][0]["queue"] == "rules-run"
    [alert] = api.get("/api/v1/alerts/").json()["results"]
    assert [delivery["attempts"][0]["outcome"] for delivery in alert["deliveries"]] == ["succeeded"]
    [failed] = api.get(test_message["url"]).json()["attempts"]
    assert failed["outcome"] == "failed" and "non-public" in failed["error"]


def test_a_success_rolled_back_leaves_its_attempt_on_record_once_as_a_retry(
    api, outside, rule_for, run_rule, monkeypatch
):
    # A success's attempt is written in the success's own transaction: when that
    # transaction rolls back, the row did not succeed and neither did the attempt.
    from alerts import services

    def broken(run):
        raise RuntimeError("the database went away mid-success")

    monkeypatch.setattr(services, "rule_record_recovery", broken)
    rule = rule_for(outside.set_page("shop", page_with_price("$ 10")))

    run = run_rule(rule["id"])

    assert run["status"] != "succeeded" and not run["snapshot"], run
    assert [(attempt["outcome"], attempt["error"]) for attempt in run["attempts"]] == [
        ("retrying", "RuntimeError: the database went away mid-success")
    ]
