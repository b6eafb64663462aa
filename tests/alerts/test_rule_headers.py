"""A rule's headers (write-only, often credentials) go to the rule's origin and nowhere else:
not to a new host a workspace member PATCHes in, not to a redirect hop on another origin,
not to a page's third-party subresources in headless mode."""

import os

import pytest

from alerts.fetchers import find_chromium
from alerts.models import Rule
from tests.alerts.conftest import OUTSIDE_HOST, page_with_price

SECRET = {"Authorization": "Bearer s3cret-token"}


@pytest.fixture
def other_origin(settings, hostile_dns):
    """elsewhere.hostile.test: the outside server (127.0.0.2) under another origin."""
    settings.OUTBOUND_DNS_SERVERS = [hostile_dns.server]
    return "elsewhere.hostile.test"


def patch(api, rule_id, body):
    response = api.client.patch(f"/api/v1/rules/{rule_id}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def authorization(request):
    return {name.lower(): value for name, value in request["headers"].items()}.get("authorization")


def test_moving_the_url_to_another_host_drops_the_headers(api, outside, rule_for, other_origin):
    rule = rule_for(outside.set_page("mine", page_with_price("$ 1")), headers=SECRET)
    assert rule["header_names"] == ["Authorization"]
    moved = patch(api, rule["id"], {"url": f"http://{other_origin}:{outside.port}/page/theirs"})
    assert moved["header_names"] == [] and Rule.objects.get().headers == {}


def test_moving_the_url_with_new_headers_keeps_the_new_ones(api, outside, rule_for, other_origin):
    rule = rule_for(outside.set_page("mine", page_with_price("$ 1")), headers=SECRET)
    url = f"http://{other_origin}:{outside.port}/page/theirs"
    moved = patch(api, rule["id"], {"url": url, "headers": {"X-Api-Key": "new"}})
    assert moved["header_names"] == ["X-Api-Key"] and Rule.objects.get().headers == {"X-Api-Key": "new"}


@pytest.mark.parametrize("change", [{"url": "/page/other-path"}, {"name": "renamed"}, {"expression": "h1"}])
def test_edits_on_the_same_origin_keep_the_headers(change, api, outside, rule_for):
    rule = rule_for(outside.set_page("mine", page_with_price("$ 1")), headers=SECRET)
    if "url" in change:
        change = {"url": outside.url + change["url"]}
    assert patch(api, rule["id"], change)["header_names"] == ["Authorization"]
    assert Rule.objects.get().headers == SECRET


def test_a_redirect_to_another_origin_does_not_carry_the_headers(outside, rule_for, run_rule, other_origin):
    landing = outside.set_page("landing", page_with_price("$ 1")).replace(OUTSIDE_HOST, other_origin)
    outside.set_page("moved", "", status=302, headers={"Location": landing})
    run = run_rule(rule_for(f"{outside.url}/page/moved", headers=SECRET)["id"])
    assert run["status"] == "succeeded", run["error"]
    assert authorization(outside.requests("/page/moved")[0]) == SECRET["Authorization"]
    assert authorization(outside.requests("/page/landing")[0]) is None


def test_a_redirect_on_the_same_origin_keeps_the_headers(outside, rule_for, run_rule):
    outside.set_page("landing", page_with_price("$ 1"))
    outside.set_page("moved", "", status=302, headers={"Location": "/page/landing"})
    run = run_rule(rule_for(f"{outside.url}/page/moved", headers=SECRET)["id"])
    assert run["status"] == "succeeded", run["error"]
    assert authorization(outside.requests("/page/landing")[0]) == SECRET["Authorization"]


@pytest.mark.skipif(
    not find_chromium() and not os.environ.get("CONVEYOR_REQUIRE_CHROMIUM"),
    reason="no Chromium on this machine (.ci/run installs Debian's chromium and requires these tests)",
)
def test_headless_sends_the_headers_to_the_rules_origin_only(outside, rule_for, run_rule, other_origin):
    outside.set_page("same.js", "document.title = 'same';", content_type="application/javascript")
    outside.set_page("pixel", "GIF89a", content_type="image/gif")
    pixel = f"http://{other_origin}:{outside.port}/page/pixel"
    page = outside.set_page("main", page_with_price("$ 1", f'<img src="{pixel}"><script src="/page/same.js"></script>'))
    run = run_rule(rule_for(page, headers=SECRET, fetch_mode="headless")["id"])
    assert run["status"] == "succeeded", run["error"]
    assert authorization(outside.requests("/page/main")[0]) == SECRET["Authorization"]
    assert authorization(outside.requests("/page/same.js")[0]) == SECRET["Authorization"]
    assert outside.requests("/page/pixel") and authorization(outside.requests("/page/pixel")[0]) is None
