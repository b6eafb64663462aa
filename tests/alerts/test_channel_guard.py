"""Apprise channels under the outbound guard: the hosts apprise itself will contact are
checked at save and at send, its HTTP goes through our pinned, capped transport, services
it reaches over raw sockets are refused, and a failed delivery never echoes the remote."""

import socket
import threading

import pytest

from alerts.channels import SMTP_REPLIES_MAX_BYTES
from alerts.models import AlertDelivery, Channel
from tests.alerts.conftest import OUTSIDE_HOST


@pytest.fixture
def private_refused(settings, hostile_dns):
    """Production's default, with only the outside server's own address opened."""
    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"{OUTSIDE_HOST}/32"]
    settings.OUTBOUND_DNS_SERVERS = [hostile_dns.server]


def create_channel(api, url, name="guarded"):
    return api.post("/api/v1/channels/", {"name": name, "kind": "apprise", "url": url})


def send_test(api, channel_id, run_worker_burst):
    api.post(f"/api/v1/channels/{channel_id}/test")
    run_worker_burst("alerts-dispatch")
    return AlertDelivery.objects.get(channel_id=channel_id)


@pytest.mark.parametrize(
    "url, address",
    [
        # Checked as example.com before; apprise sends it to 169.254.169.254.
        ("json://x@169.254.169.254@example.com/latest", "169.254.169.254"),
        ("mailto://user:pass@example.com?smtp=10.0.0.25&to=ops@example.com", "10.0.0.25"),
        ("mailtos://user:pass@example.com?smtp=metadata.hostile.test&to=ops@example.com", "169.254.169.254"),
        ("ntfy://10.0.0.1/alerts", "10.0.0.1"),
        ("ntfys://private.hostile.test/alerts", "10.0.0.5"),
        ("gotify://169.254.169.254/AbCdEfGhIjKlMnO", "169.254.169.254"),
        ("gotifys://[::ffff:a9fe:a9fe]/AbCdEfGhIjKlMnO", "169.254.169.254"),
        ("matrix://user:pass@192.168.0.10/#room", "192.168.0.10"),
        ("mmost://172.16.0.3/3ccdd113474722377935511fc85d3dd4", "172.16.0.3"),
        ("apprise://127.0.0.1/abc123", "127.0.0.1"),
        ("hassio://10.0.0.7/accesstoken", "10.0.0.7"),
        ("signal://loopback.hostile.test:8080/+12345678901/+12345678902", "127.0.0.1"),
        ("json://2130706433/", "127.0.0.1"),
        ("form://[64:ff9b::a9fe:a9fe]/", "169.254.169.254"),
    ],
)
def test_the_host_apprise_will_contact_is_checked_at_save(url, address, api, private_refused):
    response = create_channel(api, url)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and address in error["fields"]["url"][0]
    assert not Channel.objects.exists()


@pytest.mark.parametrize("url", ["rsyslog://logs.example.com", "irc://irc.example.com/#ops", "syslog://"])
def test_services_over_raw_sockets_are_refused_at_save(url, api, private_refused):
    response = create_channel(api, url)
    assert response.status_code == 400
    assert "cannot be pinned or capped" in response.json()["error"]["fields"]["url"][0]


def test_a_patch_to_a_private_host_is_refused_and_changes_nothing(api, outside, private_refused):
    channel = create_channel(api, f"json://{OUTSIDE_HOST}:{outside.port}/hook/kept").json()
    response = api.client.patch(f"/api/v1/channels/{channel['id']}", json={"url": "ntfy://10.0.0.1/alerts"})
    assert response.status_code == 400
    assert Channel.objects.get().config["url"].endswith("/hook/kept")


def test_the_userinfo_trick_is_refused_at_send_too(api, outside, run_worker_burst, settings):
    url = f"json://x@{OUTSIDE_HOST}@example.com/hook/trick"  # apprise's host: 127.0.0.2
    channel = create_channel(api, url).json()  # tests open loopback: saved
    settings.ALLOW_PRIVATE_FETCH = False
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert f"{OUTSIDE_HOST} is a non-public address" in delivery.last_error


def test_an_email_channel_whose_smtp_host_turned_private_sends_nothing(api, smtp, run_worker_burst, settings):
    url = f"mailto://127.0.0.1:{smtp.port}?from=alerts@example.com&to=ops@example.com"
    channel = create_channel(api, url, name="mail").json()
    settings.ALLOW_PRIVATE_FETCH = False
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "failed" and "127.0.0.1 is a non-public address" in delivery.last_error
    assert smtp.messages() == []


class FloodingSmtp(threading.Thread):
    """An SMTP server on loopback that greets, then answers EHLO with "250-" continuation
    lines without end (up to `most` bytes, so that even a client with no cap gets an end)."""

    def __init__(self, most=64 << 20):
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.most, self.sent = most, 0

    def run(self):
        connection, _ = self.listener.accept()
        self.listener.close()
        lines = (b"250-" + b"x" * 500 + b"\r\n") * 100
        with connection:
            try:
                connection.sendall(b"220 flood.test ESMTP\r\n")
                connection.recv(1024)
                while self.sent < self.most:
                    connection.sendall(lines)
                    self.sent += len(lines)
                connection.sendall(b"250 ok\r\n")
            except OSError:
                pass  # the client hung up: what the cap is for


def test_an_smtp_server_that_floods_its_replies_is_dropped_after_the_cap(api, run_worker_burst):
    server = FloodingSmtp()
    server.start()
    url = f"mailto://127.0.0.1:{server.port}?from=alerts@example.com&to=ops@example.com"
    channel = create_channel(api, url, name="flood").json()

    delivery = send_test(api, channel["id"], run_worker_burst)
    server.join(10)

    assert delivery.status == "failed" and delivery.attempts == 1
    assert f"the SMTP server's replies passed {SMTP_REPLIES_MAX_BYTES:,} bytes" in delivery.last_error
    assert "xxxx" not in delivery.last_error
    # What the server got out before the worker hung up: the cap and the sockets' buffers.
    assert server.sent < 16 << 20, server.sent


def test_gotify_goes_through_the_guard_at_send(api, outside, run_worker_burst, settings):
    channel = create_channel(api, f"gotify://{OUTSIDE_HOST}:{outside.port}/AbCdEfGhIjKlMnO").json()
    settings.ALLOW_PRIVATE_FETCH = False
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "failed" and f"{OUTSIDE_HOST} is a non-public address" in delivery.last_error
    assert outside.requests() == []


def test_apprise_http_resolves_through_our_resolver_and_is_pinned(
    api, outside, hostile_dns, run_worker_burst, settings
):
    """outside.hostile.test exists only in our DNS stand-in: apprise's own resolver could not
    find it, so a delivery proves the request went through our transport, to our answer."""
    settings.OUTBOUND_DNS_SERVERS = [hostile_dns.server]
    channel = create_channel(api, f"json://outside.hostile.test:{outside.port}/hook/pinned").json()
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "delivered", delivery.last_error
    assert outside.hook_calls("pinned")[0]["headers"]["Host"] == f"outside.hostile.test:{outside.port}"


def test_the_workers_netrc_credentials_never_go_with_a_message(api, outside, run_worker_burst, tmp_path, monkeypatch):
    """requests would add ~/.netrc's login to a request with none, and a "default" entry
    matches every host: a hostile channel would collect the operator's password."""
    netrc = tmp_path / "netrc"
    netrc.write_text("default login operator password s3cret-of-the-host\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    channel = create_channel(api, f"json://{OUTSIDE_HOST}:{outside.port}/hook/netrc").json()
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "delivered", delivery.last_error
    headers = {name.lower(): value for name, value in outside.hook_calls("netrc")[0]["headers"].items()}
    assert "authorization" not in headers, headers


def test_a_body_over_the_cap_fails_the_delivery(api, outside, run_worker_burst, settings):
    settings.OUTBOUND_MAX_BYTES = 1000
    outside.set_page("huge", "x" * 5000, content_type="application/json")
    channel = create_channel(api, f"json://{OUTSIDE_HOST}:{outside.port}/page/huge").json()
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "sent more than 1000 bytes" in delivery.last_error


def test_a_redirect_to_a_refused_address_is_not_followed(api, outside, run_worker_burst, private_refused):
    outside.set_page("moved", "", status=302, headers={"Location": f"http://127.0.0.1:{outside.port}/hook/inside"})
    channel = create_channel(api, f"json://{OUTSIDE_HOST}:{outside.port}/page/moved").json()
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "failed" and "127.0.0.1 is a non-public address" in delivery.last_error
    assert outside.requests("/hook/inside") == []


def test_the_remote_answer_is_not_stored_on_the_delivery(api, outside, run_worker_burst, fast_alert_policies):
    banner = "220 internal-db.corp ESMTP Postfix; redis_version:7.2.4"
    outside.set_page("banner", banner, status=500, content_type="text/plain")
    channel = create_channel(api, f"json://{OUTSIDE_HOST}:{outside.port}/page/banner").json()
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.last_error == f"JSON: {OUTSIDE_HOST} answered HTTP 500"


def test_a_closed_port_reads_as_unreachable_not_as_the_socket_error(api, run_worker_burst, fast_alert_policies):
    from core.devredis import free_port

    channel = create_channel(api, f"json://{OUTSIDE_HOST}:{free_port()}/hook/closed").json()
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.last_error == f"JSON: could not reach {OUTSIDE_HOST} (ConnectError)"


def test_services_at_a_fixed_address_are_not_checked_on_their_tokens(api, private_refused):
    """ntfy's cloud mode names a topic where other URLs name a host; slack:// names tokens."""
    for url in ("ntfy://alerts-topic", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"):
        assert create_channel(api, url).status_code == 201, url


def test_a_name_that_does_not_resolve_is_retried_not_refused(
    api, private_refused, run_worker_burst, fast_alert_policies
):
    channel = create_channel(api, "json://absent.hostile.test/hook").json()
    delivery = send_test(api, channel["id"], run_worker_burst)
    assert delivery.status == "queued" and delivery.attempts == 1  # its retry is scheduled
    assert delivery.last_error == "JSON: could not reach absent.hostile.test (ConnectError)"
