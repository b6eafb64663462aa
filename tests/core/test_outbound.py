"""The outbound guard itself: which addresses may be reached, names resolved through given
nameservers, credentials kept to their origin, and the same guard for `requests` and for
sockets libraries open themselves. Real servers on loopback, no mocks."""

import contextvars
import socket
import threading

import httpx
import pytest
import requests

from core import outbound
from core.outbound_requests import RequestsAdapter
from tests.fakes.dns_fake import FakeDns
from tests.fakes.outside_fake import OUTSIDE_HOST, Outside


@pytest.fixture(scope="module")
def outside():
    server = Outside()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_outside(outside):
    outside.control("reset")


@pytest.fixture
def production(settings):
    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    settings.OUTBOUND_DNS_SERVERS = []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "100.64.0.1",
        "169.254.169.254",
        "224.0.0.251",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "fec0::1",  # site-local: `is_global` says public
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1: `is_global` says public
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1: `is_global` says public
        "2002:a9fe:a9fe::1",
        "::127.0.0.1",  # IPv4-compatible: `is_global` says public
        "::a9fe:a9fe",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo to 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_in_every_form(address, production):
    assert not outbound.address_allowed(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1"],
)
def test_public_addresses_are_allowed_in_every_form(address, production):
    assert outbound.address_allowed(address)


def test_an_opened_network_covers_its_addresses_in_ipv6_forms_too(production, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert outbound.address_allowed("10.1.2.3") and outbound.address_allowed("::ffff:10.1.2.3")
    assert not outbound.address_allowed("10.2.0.1")


@pytest.mark.parametrize(
    "host, address",
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.0.0.1.", "10.0.0.1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ],
)
def test_numeric_spellings_are_read_as_the_address_they_spell(host, address, production):
    assert str(outbound.ip_literal(host)) == address
    with pytest.raises(outbound.FetchRefused, match="non-public address"):
        outbound.checked_addresses(host.strip("[]"), 80)


def test_names_resolve_through_the_configured_nameservers(settings, hostile_dns, production):
    settings.OUTBOUND_DNS_SERVERS = [hostile_dns.server]
    assert outbound.checked_addresses("public.hostile.test", 80) == ["93.184.216.34"]
    with pytest.raises(outbound.FetchRefused, match=r"alias.hostile.test resolves to .*169\.254\.169\.254"):
        outbound.checked_addresses("alias.hostile.test", 80)  # through a CNAME
    with pytest.raises(outbound.FetchRefused, match=r"\(10\.0\.0\.5\)"):
        outbound.checked_addresses("mixed.hostile.test", 80)  # one bad answer among good ones
    with pytest.raises(httpx.ConnectError, match="no such name"):
        outbound.checked_addresses("absent.hostile.test", 80)


def test_localhost_is_loopback_whatever_a_nameserver_says(settings, production):
    liar = FakeDns({"localhost": ["A:93.184.216.34"], "db.localhost": ["A:93.184.216.34"]})
    try:
        settings.OUTBOUND_DNS_SERVERS = [liar.server]
        for name in ("localhost", "db.localhost", "LocalHost."):
            with pytest.raises(outbound.FetchRefused):
                outbound.checked_addresses(name, 80)
    finally:
        liar.stop()


# --- credentials stay with their origin ------------------------------------------------------------


def sent_header(request, name):
    return {key.lower(): value for key, value in request["headers"].items()}.get(name.lower())


def test_origin_headers_are_not_sent_to_a_redirect_hop_on_another_origin(outside, hostile_dns, settings):
    settings.OUTBOUND_DNS_SERVERS = [hostile_dns.server]
    landing = outside.set_page("landing", "here")
    elsewhere = landing.replace(OUTSIDE_HOST, "elsewhere.hostile.test")  # same server, another origin
    outside.set_page("same", "", status=302, headers={"Location": "/page/other-hop"})
    outside.set_page("other-hop", "", status=302, headers={"Location": elsewhere})
    with outbound.new_client() as client:
        response = outbound.get(
            client,
            f"{outside.url}/page/same",
            headers={"X-Plain": "1"},
            origin_headers={"Authorization": "Bearer s3cret"},
        )
    assert response.text == "here"
    hops = {request["path"]: request for request in outside.requests("/page/")}
    assert sent_header(hops["/page/same"], "Authorization") == "Bearer s3cret"
    assert sent_header(hops["/page/other-hop"], "Authorization") == "Bearer s3cret"  # same origin
    assert sent_header(hops["/page/landing"], "Authorization") is None
    assert sent_header(hops["/page/landing"], "X-Plain") == "1"
    assert hops["/page/landing"]["headers"]["Host"].startswith("elsewhere.hostile.test")


def test_environment_proxies_are_not_used(outside, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with outbound.new_client() as client:
        assert outbound.get(client, outside.set_page("direct", "ok")).text == "ok"


# --- requests, through the same guard ----------------------------------------------------------------


def guarded_session(adapter):
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def test_requests_through_the_adapter_are_checked_capped_and_answered(outside, settings):
    adapter = RequestsAdapter()
    with guarded_session(adapter) as session:
        response = session.post(f"{outside.url}/hook/adapter", json={"hello": "world"}, auth=("user", "pw"))
    assert response.status_code == 200 and response.json() == {"ok": True}
    received = outside.hook_calls("adapter")[0]
    assert received["body"] == '{"hello": "world"}' and sent_header(received, "Authorization").startswith("Basic ")

    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"{OUTSIDE_HOST}/32"]
    settings.OUTBOUND_MAX_BYTES = 100
    moved = outside.set_page("moved", "", status=302, headers={"Location": f"http://127.0.0.1:{outside.port}/"})
    huge = outside.set_page("huge", "x" * 1000)
    with guarded_session(adapter) as session:
        with pytest.raises(requests.ConnectionError):
            session.get(moved)
        with pytest.raises(requests.ConnectionError):
            session.get(huge)
    assert adapter.refusals == [
        "127.0.0.1 is a non-public address (127.0.0.1)",
        f"{huge} sent more than 100 bytes",
    ]


# --- sockets a library opens itself ---------------------------------------------------------------


@pytest.fixture
def loopback_listener():
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()
    listener.close()


def test_inside_sockets_checked_a_private_connection_is_refused(loopback_listener, production, outside, settings):
    refused = []
    with outbound.sockets_checked(refused.append):
        with pytest.raises(outbound.SocketRefused):
            socket.create_connection(loopback_listener, timeout=2)
        with pytest.raises(outbound.SocketRefused):
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("10.0.0.1", 514))
        settings.OUTBOUND_ALLOWED_NETWORKS = [f"{OUTSIDE_HOST}/32"]
        socket.create_connection((OUTSIDE_HOST, outside.port), timeout=2).close()
    assert refused == [
        "a connection to a non-public address (127.0.0.1) was refused",
        "a connection to a non-public address (10.0.0.1) was refused",
    ]
    socket.create_connection(loopback_listener, timeout=2).close()  # outside the block: untouched


def test_threads_that_copy_the_context_are_checked_and_others_are_not(loopback_listener, production):
    outcomes = {}

    def connect(name):
        try:
            socket.create_connection(loopback_listener, timeout=2).close()
            outcomes[name] = "connected"
        except outbound.SocketRefused:
            outcomes[name] = "refused"

    with outbound.sockets_checked():
        copied = threading.Thread(target=contextvars.copy_context().run, args=(connect, "copied"))
        unrelated = threading.Thread(target=connect, args=("unrelated",))
        for thread in (copied, unrelated):
            thread.start()
            thread.join()
    assert outcomes == {"copied": "refused", "unrelated": "connected"}
