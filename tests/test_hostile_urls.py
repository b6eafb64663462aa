"""Hostile URLs, tried through the real API on everything a user can make us fetch or send to:
rules, sources, accounts, webhook channels and apprise channels.

With ALLOW_PRIVATE_FETCH off (production's default), every URL of the table is refused with a
400 in the API's error shape and nothing is saved. Names are served by a real DNS server on
loopback (tests/fakes/dns.py) that plays the attacker's own domain. A redirect to any of
these addresses, from a public page, is refused when the page is fetched, before connecting.
"""

import pytest

from aggregation.models import Fetch, RemoteAccount, Source
from alerts.models import AlertDelivery, Channel, Rule, RuleRun
from tests.fakes.outside_fake import OUTSIDE_HOST, Outside

LOOPBACK_PRIVATE_METADATA = [
    "http://127.0.0.1/admin",
    "http://127.8.9.10/",
    "http://localhost:8000/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://169.254.170.2/v2/credentials",  # container credentials
    "http://198.18.0.1/",
    "http://224.0.0.1/",
]
IPV6_FORMS = [
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/latest/meta-data/",  # metadata over IPv6 (unique local)
    "http://[fec0::1]/",  # site-local
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::7f00:1]/",  # NAT64
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",  # 6to4
    "http://[2002:a9fe:a9fe::1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::a00:1]/",
]
NUMERIC_FORMS = [
    "http://2130706433/",  # decimal
    "http://0x7f000001/",  # hex
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://017700000001/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://2852039166/latest/meta-data/",  # 169.254.169.254
]
USERINFO_TRICKS = [
    "http://example.com@127.0.0.1/",
    "http://user:password@169.254.169.254/",
    "http://example.com:80@10.0.0.1/",
    "http://x@169.254.169.254@example.com/latest",
    "http://127.0.0.1#@example.com/",
]
HOSTILE_NAMES = [
    "http://loopback.hostile.test/",
    "http://metadata.hostile.test/latest/meta-data/",
    "http://private.hostile.test/",
    "http://cgnat.hostile.test/",
    "http://mixed.hostile.test/",  # a public answer and a private one
    "http://v6loopback.hostile.test/",
    "http://nat64.hostile.test/",
    "http://mapped.hostile.test/",
    "http://sixtofour.hostile.test/",
    "http://alias.hostile.test/",  # a CNAME to the metadata name
    "http://app.localhost/",
]
HOSTILE_URLS = LOOPBACK_PRIVATE_METADATA + IPV6_FORMS + NUMERIC_FORMS + USERINFO_TRICKS + HOSTILE_NAMES


@pytest.fixture(scope="module")
def outside():
    server = Outside()
    yield server
    server.stop()


@pytest.fixture
def production_guard(settings, hostile_dns):
    """Production's default: private addresses refused; names resolved by the attacker's DNS."""
    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    settings.OUTBOUND_DNS_SERVERS = [hostile_dns.server]


def as_apprise(url):
    """The same target as an apprise JSON channel: json:// is apprise's http://."""
    return "jsons" + url.removeprefix("https") if url.startswith("https") else "json" + url.removeprefix("http")


def create_everywhere(api, url):
    return {
        "rule": api.post("/api/v1/rules/", {"name": "r", "url": url, "extractor": "css", "expression": "p"}),
        "source": api.post("/api/v1/sources/", {"name": "s", "platform": "feed", "url": url}),
        "account": api.post("/api/v1/accounts/", {"instance": url, "access_token": "token-123"}),
        "webhook": api.post("/api/v1/channels/", {"name": "w", "kind": "webhook", "url": url}),
        "apprise": api.post("/api/v1/channels/", {"name": "a", "kind": "apprise", "url": as_apprise(url)}),
    }


def test_the_table_has_at_least_forty_hostile_urls():
    assert len(set(HOSTILE_URLS)) >= 40


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_hostile_url_is_refused_on_rules_sources_accounts_and_channels(url, api, production_guard):
    for kind, response in create_everywhere(api, url).items():
        assert response.status_code == 400, f"{kind}: {response.status_code} {response.text}"
        error = response.json()["error"]
        assert error["code"] == "invalid" and {"url", "instance"} & set(error["fields"]), f"{kind}: {error}"
    assert not (Rule.objects.exists() or Source.objects.exists() or RemoteAccount.objects.exists())
    assert not Channel.objects.exists()


def test_a_public_name_is_accepted_everywhere(api, production_guard):
    """The control: the same requests with a public address are not refused."""
    for kind, response in create_everywhere(api, "http://public.hostile.test/feed").items():
        assert response.status_code == 201, f"{kind}: {response.text}"


def test_the_refusal_names_the_address_it_leads_to(api, production_guard):
    response = api.post(
        "/api/v1/rules/", {"name": "r", "url": "http://nat64.hostile.test/", "extractor": "css", "expression": "p"}
    )
    message = response.json()["error"]["fields"]["url"][0]
    assert "nat64.hostile.test resolves to a non-public address" in message and "169.254.169.254" in message


# --- redirects: the page is public, where it sends us is not ---------------------------------------

REDIRECT_TARGETS = [
    "http://127.0.0.1:{port}/page/secret",
    "http://localhost:{port}/page/secret",
    "http://[::1]:{port}/page/secret",
    "http://2130706433:{port}/page/secret",
    "http://0x7f.1:{port}/page/secret",
    "http://[::ffff:127.0.0.1]:{port}/page/secret",
    "http://[64:ff9b::7f00:1]:{port}/page/secret",
    "http://169.254.169.254/latest/meta-data/",
    "http://user@10.0.0.1/",
    "http://loopback.hostile.test:{port}/page/secret",
    "http://alias.hostile.test/latest/meta-data/",
]


@pytest.fixture
def public_outside(production_guard, outside, settings):
    """The outside stand-in counts as public (its address alone is opened), nothing else does."""
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"{OUTSIDE_HOST}/32"]
    outside.control("reset")
    return outside


def redirecting_page(outside, target):
    return outside.set_page("moved", "", status=302, headers={"Location": target.format(port=outside.port)})


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_a_rule_whose_page_redirects_inside_fails_before_connecting(target, api, public_outside, run_worker_burst):
    url = redirecting_page(public_outside, target)
    rule = api.post("/api/v1/rules/", {"name": "r", "url": url, "extractor": "css", "expression": "p"}).json()
    api.post(f"/api/v1/rules/{rule['id']}/run")
    run_worker_burst("rules-run")
    run = RuleRun.objects.get(rule_id=rule["id"])
    assert run.status == "failed" and "non-public address" in run.error, run.error
    assert run.attempts == 1  # refused is final
    assert public_outside.requests("/page/secret") == []


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_a_source_whose_feed_redirects_inside_fails_before_connecting(target, api, public_outside, run_worker_burst):
    url = redirecting_page(public_outside, target)
    source = api.post("/api/v1/sources/", {"name": "s", "platform": "feed", "url": url}).json()
    assert api.post(f"/api/v1/sources/{source['id']}/fetch").status_code == 202
    run_worker_burst("content-aggregation")
    fetch = Fetch.objects.get(source_id=source["id"])
    assert fetch.status == "failed" and "non-public address" in fetch.last_error, fetch.last_error
    assert public_outside.requests("/page/secret") == []


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_an_apprise_channel_whose_endpoint_redirects_inside_fails(target, api, public_outside, run_worker_burst):
    redirecting_page(public_outside, target)
    url = f"json://{OUTSIDE_HOST}:{public_outside.port}/page/moved"
    channel = api.post("/api/v1/channels/", {"name": "a", "kind": "apprise", "url": url}).json()
    api.post(f"/api/v1/channels/{channel['id']}/test")
    run_worker_burst("alerts-dispatch")
    delivery = AlertDelivery.objects.get(channel_id=channel["id"])
    assert delivery.status == "failed" and "non-public address" in delivery.last_error, delivery.last_error
    assert delivery.attempts == 1  # refused is final
    assert [request["method"] for request in public_outside.requests("/page/moved")] == ["POST"]
    assert public_outside.requests("/page/secret") == []
