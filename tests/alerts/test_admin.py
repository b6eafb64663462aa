"""The operators' side: every alerts page renders, diffs in colour, run now, resend, secrets kept."""

import pytest
from django.apps import apps
from rq.registry import FailedJobRegistry

from alerts.models import Alert, AlertDelivery, Channel, Rule, RuleRun
from jobs.queueing import get_queue
from tests.alerts.conftest import page_with_price
from tests.rows import admin_change

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts"


@pytest.fixture
def changed_rule(api, outside, rule_for, channel_for, run_rule):
    rule = rule_for(outside.set_page("adm", page_with_price("$ 10")))
    channel_for("ops")
    api.post("/api/v1/channels/", {"name": "slack", "kind": "apprise", "url": SLACK})
    Channel.objects.filter(name="slack").update(enabled=False)
    run_rule(rule["id"])
    outside.set_page("adm", page_with_price("$ 12"))
    run_rule(rule["id"])
    return rule


@pytest.mark.parametrize("model", ["rule", "rulerun", "snapshot", "alert", "alertdelivery", "channel"])
def test_alerts_admin_pages_render_without_secrets(staff, changed_rule, model):
    listing = staff.get(f"/admin/alerts/{model}/")
    assert listing.status_code == 200
    row = apps.get_model("alerts", model).objects.order_by("id").first()
    first = staff.get(f"/admin/alerts/{model}/{row.pk}/change/")
    assert first.status_code == 200
    for page in (listing, first):
        assert "TIiajkdnlazkcOXrIdevi7FQ" not in page.content.decode()


def test_an_alert_shows_its_diff_in_colour(staff, changed_rule):
    page = staff.get(f"/admin/alerts/alert/{Alert.objects.get().pk}/change/").content.decode()
    assert '<span style="color:#a50e0e;background:#fce8e6">-$ 10</span>' in page
    assert '<span style="color:#137333;background:#e6f4ea">+$ 12</span>' in page


def test_run_now_queues_a_test_run_at_the_front(staff, changed_rule):
    staff.post("/admin/alerts/rule/", {"action": "run_now", "_selected_action": [changed_rule["id"]]}, follow=True)
    run = RuleRun.objects.filter(trigger="manual_test").latest("id")
    assert run.status == "queued" and get_queue("rules-run").get_job_ids() == [run.job_id]


def test_resend_queues_the_delivery_again(staff, changed_rule):
    delivery = AlertDelivery.objects.get()
    staff.post("/admin/alerts/alertdelivery/", {"action": "resend", "_selected_action": [delivery.pk]}, follow=True)
    delivery.refresh_from_db()
    assert delivery.status == "queued" and get_queue("alerts-dispatch").get_job_ids() == [delivery.job_id]


def test_a_channel_url_is_kept_when_the_form_leaves_it_empty(staff, changed_rule):
    channel = Channel.objects.get(name="slack")
    form = {"workspace": channel.workspace_id, "name": "renamed", "kind": "apprise", "url": "", "enabled": "on"}
    response = staff.post(f"/admin/alerts/channel/{channel.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel.refresh_from_db()
    assert channel.name == "renamed" and channel.config == {"url": SLACK}


def test_failed_runs_can_be_retried_from_the_admin(staff, outside, rule_for, run_rule):
    rule = rule_for(outside.set_page("retry-me", "gone", status=404))
    failed = run_rule(rule["id"])
    job_id = RuleRun.objects.get(pk=failed["id"]).job_id
    assert FailedJobRegistry(queue=get_queue("rules-run")).get_job_ids() == [job_id]

    staff.post("/admin/alerts/rulerun/", {"action": "retry", "_selected_action": [failed["id"]]}, follow=True)

    # The same run, tried again by its own failed job, which leaves the failed list.
    run = RuleRun.objects.get(pk=failed["id"])
    assert (run.status, run.attempts, run.error, run.job_id) == ("queued", 0, "", job_id)
    assert get_queue("rules-run").get_job_ids() == [job_id]
    assert FailedJobRegistry(queue=get_queue("rules-run")).get_job_ids() == []


def test_the_rule_list_shows_recent_runs_as_coloured_squares(staff, changed_rule, outside, run_rule):
    outside.set_page("adm", "gone", status=404)
    run_rule(changed_rule["id"])
    page = staff.get("/admin/alerts/rule/").content.decode()
    strip = page[page.index("Last 12 runs") :]
    # baseline (unchanged), changed, failed: oldest first
    assert strip.index("background:#34a853") < strip.index("background:#1a73e8") < strip.index("background:#d93025")


def test_editing_what_a_rule_watches_in_the_admin_starts_a_new_baseline(staff, outside, rule_for, run_rule):
    rule = rule_for(outside.set_page("edited", page_with_price("$ 10", extra="<b id='stock'>5 left</b>")))
    run_rule(rule["id"])

    response = admin_change(staff, f"/admin/alerts/rule/{rule['id']}/change/", expression="#stock")
    assert response.status_code == 302, response.content.decode()[:2000]

    run = run_rule(rule["id"])
    assert run["status"] == "succeeded" and run["changed"] is False  # the edit is no change
    assert Alert.objects.count() == 0
    assert Rule.objects.get(pk=rule["id"]).revision == 2


def test_a_channel_made_in_the_admin_is_checked_like_one_made_over_the_api(staff, api, settings):
    workspace = api.get("/api/v1/workspaces/").json()["results"][0]["id"]
    settings.ALLOW_PRIVATE_FETCH = False
    form = {"workspace": workspace, "name": "inside", "kind": "webhook", "url": "http://127.0.0.1:9/x", "enabled": "on"}

    response = staff.post("/admin/alerts/channel/add/", form)

    assert response.status_code == 200 and "non-public" in response.content.decode()
    assert not Channel.objects.exists()
    settings.ALLOW_PRIVATE_FETCH = True
    response = staff.post("/admin/alerts/channel/add/", form, follow=True)
    channel = Channel.objects.get()
    assert channel.config["secret"] and channel.config["secret"] in response.content.decode()  # shown once


def test_a_staff_user_who_is_not_a_superuser_sees_only_their_workspaces(api, other_api, make_user):
    from django.contrib.auth.models import Permission
    from django.test import Client

    from workspaces.models import Membership

    mine = api.post("/api/v1/rules/", {"name": "mine-rule", "url": "http://127.0.0.1:9/", "expression": "h1"}).json()
    theirs = other_api.post("/api/v1/rules/", {"name": "their-rule", "url": "http://127.0.0.1:9/", "expression": "h1"})
    operator = make_user("helpdesk", is_staff=True)
    operator.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["alerts", "workspaces"]))
    Membership.objects.create(workspace_id=mine["workspace"], user=operator)
    client = Client()
    client.force_login(operator)

    listing = client.get("/admin/alerts/rule/").content.decode()
    assert "mine-rule" in listing and "their-rule" not in listing
    other = client.get(f"/admin/alerts/rule/{theirs.json()['id']}/change/", follow=True)
    assert "their-rule" not in other.content.decode()
    workspaces = client.get("/admin/workspaces/workspace/").content.decode()
    assert "bob" not in workspaces


def test_a_rule_url_typed_in_the_admin_meets_the_guard(staff, outside, rule_for, settings):
    rule = rule_for(outside.set_page("guarded", page_with_price("$ 1")))
    settings.ALLOW_PRIVATE_FETCH = False

    response = admin_change(staff, f"/admin/alerts/rule/{rule['id']}/change/", url="http://169.254.169.254/latest/")

    assert response.status_code == 200 and "non-public" in response.content.decode()
    assert Rule.objects.get(pk=rule["id"]).url == rule["url"]
