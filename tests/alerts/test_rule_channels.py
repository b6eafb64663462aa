"""Rules choose their channels: the chosen ones get the rule's alerts, none chosen means
every enabled channel of the workspace, and another workspace's channel is never taken."""

from alerts.models import Channel, Rule
from tests.alerts.conftest import page_with_price
from tests.rows import admin_change


def change_once(outside, rule, run_rule, name):
    run_rule(rule["id"])
    outside.set_page(name, page_with_price("$ 11"))
    assert run_rule(rule["id"])["changed"] is True


def test_a_rule_with_one_chosen_channel_alerts_that_channel_only(api, outside, rule_for, channel_for, run_rule):
    chosen = channel_for("chosen")
    channel_for("other")
    rule = rule_for(outside.set_page("one", page_with_price("$ 10")), channels=[chosen["id"]])
    assert rule["channels"] == [chosen["id"]]
    assert api.get(f"/api/v1/rules/{rule['id']}").json()["channels"] == [chosen["id"]]

    change_once(outside, rule, run_rule, "one")

    assert len(outside.hook_calls("chosen")) == 1
    assert outside.hook_calls("other") == []


def test_a_rule_with_no_channels_alerts_every_enabled_channel(api, outside, rule_for, channel_for, run_rule):
    channel_for("first")
    channel_for("second")
    off = channel_for("off")
    api.client.patch(f"/api/v1/channels/{off['id']}", json={"enabled": False})
    rule = rule_for(outside.set_page("all", page_with_price("$ 10")))
    assert rule["channels"] == []

    change_once(outside, rule, run_rule, "all")

    assert len(outside.hook_calls("first")) == len(outside.hook_calls("second")) == 1
    assert outside.hook_calls("off") == []


def test_clearing_a_rules_channels_sends_to_every_channel_again(api, outside, rule_for, channel_for, run_rule):
    chosen = channel_for("chosen")
    channel_for("other")
    rule = rule_for(outside.set_page("clear", page_with_price("$ 10")), channels=[chosen["id"]])

    response = api.client.patch(f"/api/v1/rules/{rule['id']}", json={"channels": []})
    assert response.status_code == 200 and response.json()["channels"] == []
    change_once(outside, rule, run_rule, "clear")

    assert len(outside.hook_calls("chosen")) == len(outside.hook_calls("other")) == 1


def test_another_workspaces_channel_is_a_400_that_changes_nothing(api, other_api, outside, rule_for, channel_for):
    mine = channel_for("mine")
    theirs = other_api.post("/api/v1/channels/", {"name": "theirs", "kind": "apprise", "url": "json://example.com/x"})
    theirs_id = theirs.json()["id"]
    body = {"name": "r", "url": outside.set_page("x", "<p id='price'>1</p>"), "expression": "#price"}

    created = api.post("/api/v1/rules/", {**body, "channels": [mine["id"], theirs_id]})
    missing = api.post("/api/v1/rules/", {**body, "channels": [999999]})

    assert created.status_code == 400 and missing.status_code == 400
    assert created.json()["error"]["code"] == "invalid"
    assert created.json()["error"]["fields"] == {"channels": [f"No such channel in this workspace: {theirs_id}."]}
    # Another workspace's channel reads exactly as one that does not exist.
    assert missing.json()["error"]["message"] == created.json()["error"]["message"]
    assert not Rule.objects.exists()

    rule = rule_for(body["url"], channels=[mine["id"]])
    patched = api.client.patch(f"/api/v1/rules/{rule['id']}", json={"channels": [theirs_id], "name": "renamed"})
    assert patched.status_code == 400 and "channels" in patched.json()["error"]["fields"]
    saved = Rule.objects.get(pk=rule["id"])
    assert saved.name == "watched" and list(saved.channels.values_list("pk", flat=True)) == [mine["id"]]


def test_channel_ids_are_typed(api, outside):
    body = {"name": "r", "url": outside.set_page("t", "<p id='price'>1</p>"), "expression": "#price"}
    for channels in (["1"], [True], 5, [0]):
        response = api.post("/api/v1/rules/", {**body, "channels": channels})
        assert response.status_code == 400 and "channels" in response.json()["error"]["fields"], channels


def test_the_admin_rule_form_offers_only_the_rules_workspaces_channels(
    staff, api, other_api, outside, rule_for, channel_for
):
    mine = channel_for("mine")
    other_api.post("/api/v1/channels/", {"name": "theirs", "kind": "apprise", "url": "json://example.com/x"})
    theirs = Channel.objects.get(name="theirs")
    rule = rule_for(outside.set_page("adm", "<p id='price'>1</p>"))
    page = f"/admin/alerts/rule/{rule['id']}/change/"

    offered = staff.get(page).context["adminform"].form.fields["channels"].queryset
    assert list(offered) == [Channel.objects.get(pk=mine["id"])]

    assert admin_change(staff, page, channels=[mine["id"]]).status_code == 302
    assert list(Rule.objects.get(pk=rule["id"]).channels.all()) == [Channel.objects.get(pk=mine["id"])]
    refused = admin_change(staff, page, channels=[theirs.pk])
    assert refused.status_code == 200 and "channels" in refused.context["adminform"].form.errors
    assert list(Rule.objects.get(pk=rule["id"]).channels.all()) == [Channel.objects.get(pk=mine["id"])]


def test_a_new_rule_in_the_admin_cannot_take_another_workspaces_channel(staff, api, other_api, channel_for, outside):
    channel_for("mine")
    other_api.post("/api/v1/channels/", {"name": "theirs", "kind": "apprise", "url": "json://example.com/x"})
    mine, theirs = Channel.objects.get(name="mine"), Channel.objects.get(name="theirs")
    form = {
        "workspace": mine.workspace_id,
        "name": "new",
        "url": outside.set_page("new", "<p id='price'>1</p>"),
        "fetch_mode": "http",
        "extractor": "css",
        "expression": "#price",
        "collapse_whitespace": "on",
        "ignore_patterns": "[]",
        "interval": 3600,
        "enabled": "on",
        "priority": "normal",
        "error_threshold": 3,
    }

    refused = staff.post("/admin/alerts/rule/add/", {**form, "channels": [theirs.pk]})
    assert refused.status_code == 200 and "channels" in refused.context["adminform"].form.errors
    assert not Rule.objects.exists()

    saved = staff.post("/admin/alerts/rule/add/", {**form, "channels": [mine.pk]})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert list(Rule.objects.get(name="new").channels.all()) == [mine]
