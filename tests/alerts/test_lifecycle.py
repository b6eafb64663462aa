"""Rule runs and deliveries: failed rows are failed jobs, and requeueing a failed job tries
its row again, from the queues API or the django-rq dashboard."""

import pytest

from alerts.models import AlertDelivery, RuleRun
from tests.alerts.conftest import page_with_price
from tests.rows import assert_registry_agrees, failed_jobs, requeue_from_dashboard, staff_client


@pytest.fixture
def instant_retries(settings, fast_alert_policies):
    """The queues' retries, at once: a burst worker runs every try."""
    policies = {name: dict(policy) for name, policy in settings.QUEUE_POLICIES.items()}
    policies["rules-run"].update(retry_delays=[0, 0])
    policies["alerts-dispatch"].update(retry_delays=[0, 0])
    settings.QUEUE_POLICIES = policies


def test_a_gone_page_fails_the_run_and_its_job_at_once(outside, rule_for, run_rule, instant_retries):
    rule = rule_for(outside.set_page("gone", "nothing", status=404))

    run = RuleRun.objects.get(pk=run_rule(rule["id"])["id"])

    assert run.status == "failed" and run.attempts == 1 and "404" in run.error
    assert_registry_agrees(run, "rules-run", error_field="error")


def test_a_run_out_of_retries_is_a_failed_job_and_the_dashboards_requeue_runs_it_again(
    outside, rule_for, run_rule, run_worker_burst, instant_retries, make_user
):
    rule = rule_for(outside.set_page("flaky", "down", status=502))
    run = RuleRun.objects.get(pk=run_rule(rule["id"])["id"])
    assert run.status == "failed" and run.attempts == 3 and "502" in run.error
    assert_registry_agrees(run, "rules-run", error_field="error")
    outside.set_page("flaky", page_with_price("$ 3"))

    requeue_from_dashboard(staff_client(make_user), "rules-run", run.job_id)
    run_worker_burst("rules-run")

    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 1 and run.error == ""
    assert_registry_agrees(run, "rules-run", error_field="error")


def test_a_delivery_out_of_retries_is_a_failed_job_and_requeue_failed_sends_it(
    api, staff_api, outside, channel_for, run_worker_burst, instant_retries
):
    channel = channel_for("down")
    outside.fail_hook("down", times=3)
    response = api.post(f"/api/v1/channels/{channel['id']}/test")
    run_worker_burst("alerts-dispatch")
    delivery = AlertDelivery.objects.get(pk=response.json()["delivery"]["id"])
    assert delivery.status == "failed" and delivery.attempts == 3
    assert_registry_agrees(delivery, "alerts-dispatch")

    requeued = staff_api.post("/api/v1/queues/alerts-dispatch/requeue-failed").json()["requeued"]
    delivery.refresh_from_db()
    assert requeued == 1 and (delivery.status, delivery.attempts) == ("queued", 0)
    run_worker_burst("alerts-dispatch")

    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert_registry_agrees(delivery, "alerts-dispatch")
    assert len(outside.hook_calls("down")) == 4  # three refused, then the requeued one


def test_a_refused_channel_fails_the_delivery_and_its_job_at_once(
    api, outside, channel_for, run_worker_burst, instant_retries, settings
):
    channel = channel_for("private")
    settings.ALLOW_PRIVATE_FETCH = False
    response = api.post(f"/api/v1/channels/{channel['id']}/test")
    run_worker_burst("alerts-dispatch")

    delivery = AlertDelivery.objects.get(pk=response.json()["delivery"]["id"])
    assert delivery.status == "failed" and delivery.attempts == 1
    assert_registry_agrees(delivery, "alerts-dispatch")
    assert outside.hook_calls("private") == []


def test_resending_a_delivered_delivery_from_the_admin_sends_it_once_more(
    api, outside, channel_for, run_worker_burst, instant_retries, staff
):
    channel = channel_for("again")
    response = api.post(f"/api/v1/channels/{channel['id']}/test")
    run_worker_burst("alerts-dispatch")
    delivery = AlertDelivery.objects.get(pk=response.json()["delivery"]["id"])

    staff.post("/admin/alerts/alertdelivery/", {"action": "resend", "_selected_action": [delivery.pk]})
    run_worker_burst("alerts-dispatch")

    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert len(outside.hook_calls("again")) == 2
    assert failed_jobs("alerts-dispatch") == {}
