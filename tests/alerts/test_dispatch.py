"""Alerts to channels: apprise (JSON webhook, email), our signed webhook, dedupe under a race."""

import json

from django.db import transaction

from alerts import channels, services
from alerts.jobs import claims_prune
from alerts.models import Alert, AlertDelivery, Channel, Rule, RuleRun
from jobs import scheduling
from tests.alerts.conftest import OUTSIDE_HOST, page_with_price
from tests.conftest import wait_for


def change_once(outside, rule_for, run_rule, name="page"):
    rule = rule_for(outside.set_page(name, page_with_price("$ 10")))
    run_rule(rule["id"])
    outside.set_page(name, page_with_price("$ 11"))
    assert run_rule(rule["id"])["changed"] is True
    return rule


def test_signed_webhook_carries_a_verifiable_signature(api, outside, rule_for, channel_for, run_rule):
    created = channel_for("signed", kind="webhook", url=f"{outside.url}/hook/signed")
    secret = created["secret"]
    assert "url" not in created and created["service"] == "webhook"
    assert "secret" not in api.get(f"/api/v1/channels/{created['id']}").json()

    change_once(outside, rule_for, run_rule)
    [call] = outside.hook_calls("signed")
    headers = {name.lower(): value for name, value in call["headers"].items()}
    body = call["body"].encode()
    assert headers["x-conveyor-signature"] == channels.signature(secret, headers["x-conveyor-timestamp"], body)
    assert channels.signature("wrong-secret", headers["x-conveyor-timestamp"], body) != headers["x-conveyor-signature"]
    sent = json.loads(body)
    assert sent["kind"] == "change" and "+$ 11" in sent["diff"] and sent["url"].endswith("/page/page")
    assert sent["delivery"] == AlertDelivery.objects.get().pk  # a receiver can dedupe by it


def test_email_channel_sends_through_smtp(api, outside, rule_for, channel_for, run_rule, smtp):
    channel_for("mail", url=f"mailto://127.0.0.1:{smtp.port}?from=alerts@example.com&to=ops@example.com")
    change_once(outside, rule_for, run_rule)
    wait_for(smtp.messages, timeout=10, message="the email")
    [message] = smtp.messages()
    assert message["to"] == ["ops@example.com"] and message["subject"] == "watched changed"
    assert "+$ 11" in message["body"]
    assert AlertDelivery.objects.get().status == "delivered"


def test_channel_test_endpoint_queues_a_test_message(api, other_api, outside, channel_for, run_worker_burst):
    channel = channel_for("tested")
    response = api.post(f"/api/v1/channels/{channel['id']}/test")
    assert response.status_code == 202
    assert response.json()["delivery"]["status"] == "queued"
    run_worker_burst("alerts-dispatch")
    assert api.get(response.json()["url"]).json()["status"] == "delivered"
    [call] = outside.hook_calls("tested")
    assert json.loads(call["body"])["title"] == "Conveyor test message"
    assert api.post(f"/api/v1/channels/{channel['id']}/test", {"now": True}).status_code == 400
    assert other_api.get(response.json()["url"]).status_code == 404


def test_two_racing_runs_alert_once_per_channel(api, outside, rule_for, channel_for, processes, fast_alert_policies):
    url = outside.set_page("race", page_with_price("$ 1"))
    rule = rule_for(url)
    channel_for("first")
    channel_for("second")
    # Three processes: in a pool serving two queues, each queue leaves one process to the other.
    worker = processes.worker("rules-run", "alerts-dispatch", processes=3)
    first = api.post(f"/api/v1/rules/{rule['id']}/run").json()["run"]
    wait_for(lambda: RuleRun.objects.get(pk=first).status == "succeeded", message="the baseline")

    # Both runs fetch the new content at the same moment, each in its own worker process.
    outside.control("page", {"name": "race", "body": page_with_price("$ 2"), "delay": 0.5})
    with transaction.atomic():
        for trigger in (RuleRun.Trigger.MANUAL_TEST, RuleRun.Trigger.SCHEDULE):
            services.run_create(Rule.objects.get(pk=rule["id"]), trigger=trigger)
    wait_for(lambda: RuleRun.objects.filter(status="succeeded").count() == 3, timeout=30, message="both runs")
    wait_for(lambda: len(outside.hook_calls("first")) + len(outside.hook_calls("second")) >= 2, message="deliveries")

    assert worker.poll() is None
    starts = sorted(run.started_at for run in RuleRun.objects.exclude(pk=first))
    assert (starts[1] - starts[0]).total_seconds() < 0.5, "the two runs did not overlap"
    assert RuleRun.objects.filter(changed=True).count() == 1
    assert Alert.objects.count() == 1
    assert len(outside.hook_calls("first")) == 1 and len(outside.hook_calls("second")) == 1


def test_the_same_change_within_the_window_is_delivered_once_per_channel(outside, rule_for, channel_for, run_rule):
    rule = rule_for(outside.set_page("flap", page_with_price("$ 1")))
    channel_for("ops")
    run_rule(rule["id"])
    for price in ("$ 2", "$ 1", "$ 2"):  # flapping: the second "$ 2" is the same change again
        outside.set_page("flap", page_with_price(price))
        assert run_rule(rule["id"])["changed"] is True
    statuses = list(AlertDelivery.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["delivered", "delivered", "duplicate"]
    assert len(outside.hook_calls("ops")) == 2


def test_dedupe_claims_are_decided_by_the_database(outside, channel_for, api):
    channel = Channel.objects.get(pk=channel_for("ops")["id"])
    window = services.timedelta(seconds=300)
    assert services.claim_dedupe(channel, "change:1:abc", window) is True
    assert services.claim_dedupe(channel, "change:1:abc", window) is False
    assert services.claim_dedupe(channel, "change:1:def", window) is True
    services.DedupeClaim.objects.update(until=services.timezone.now())
    assert services.claim_dedupe(channel, "change:1:abc", window) is True  # the window has passed


def test_resend_sends_a_delivery_again(outside, rule_for, channel_for, run_rule, run_worker_burst):
    channel_for("hook")
    change_once(outside, rule_for, run_rule)
    delivery = AlertDelivery.objects.get()
    services.delivery_resend(delivery=delivery)
    run_worker_burst("alerts-dispatch")
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert len(outside.hook_calls("hook")) == 2


def test_a_refused_webhook_address_fails_without_retries(api, outside, channel_for, run_worker_burst, settings):
    channel = channel_for("internal", kind="webhook", url=f"{outside.url}/hook/internal")
    settings.ALLOW_PRIVATE_FETCH = False
    api.post(f"/api/v1/channels/{channel['id']}/test")
    run_worker_burst("alerts-dispatch")
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed" and "non-public" in delivery.last_error and delivery.attempts == 1
    assert outside.hook_calls("internal") == []


def test_apprise_json_endpoints_are_guarded_too(api, outside, channel_for, run_worker_burst, settings):
    channel_for("guarded")
    settings.ALLOW_PRIVATE_FETCH = False
    api.post(f"/api/v1/channels/{Channel.objects.get().pk}/test")
    run_worker_burst("alerts-dispatch")
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed" and f"{OUTSIDE_HOST}" in delivery.last_error
    assert outside.hook_calls("guarded") == []


def test_expired_dedupe_claims_are_pruned_every_hour(channel_for):
    channel = Channel.objects.get(pk=channel_for("ops")["id"])
    window = services.timedelta(seconds=300)
    services.claim_dedupe(channel, "change:1:old", window)
    services.claim_dedupe(channel, "change:1:new", window)
    services.DedupeClaim.objects.filter(dedupe_key="change:1:old").update(until=services.timezone.now() - window)

    scheduler = scheduling.get_scheduler()
    scheduling.sync_provider(scheduler, services.PRUNE_PREFIX, services.housekeeping_schedules)
    assert scheduling.timing_of(scheduler, "alerts-prune-claims") == "every 3600s"
    assert claims_prune() == "1 expired dedupe claims deleted"
    assert list(services.DedupeClaim.objects.values_list("dedupe_key", flat=True)) == ["change:1:new"]


def test_a_delivery_whose_job_redis_forgot_is_resumed(api, outside, channel_for, run_worker_burst):
    from jobs.connection import get_redis
    from jobs.reconciler import reconcile

    channel = channel_for("lost")
    api.post(f"/api/v1/channels/{channel['id']}/test")
    get_redis().flushdb()
    AlertDelivery.objects.update(updated_at=services.timezone.now() - services.timedelta(minutes=1))
    assert reconcile(grace=0) == 1
    run_worker_burst("alerts-dispatch")
    assert AlertDelivery.objects.get().status == "delivered" and len(outside.hook_calls("lost")) == 1
