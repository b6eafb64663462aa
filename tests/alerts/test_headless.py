"""Headless mode: the system's Chromium renders the page; every request it makes goes
through our checked client, so the SSRF guard holds inside the browser too."""

import os
import socket
import threading
import time

import pytest

from alerts.fetchers import find_chromium
from tests.alerts.conftest import OUTSIDE_HOST

pytestmark = pytest.mark.skipif(
    not find_chromium() and not os.environ.get("CONVEYOR_REQUIRE_CHROMIUM"),
    reason="no Chromium on this machine (.ci/run installs Debian's chromium and requires these tests)",
)

RENDERED = """<html><body><div id="price"></div>
<script>document.getElementById("price").textContent = "Rendered " + (40 + 2);</script>
{extra}</body></html>"""


def test_headless_mode_sees_what_javascript_renders(outside, rule_for, run_rule):
    url = outside.set_page("js", RENDERED.format(extra=""))
    rule = rule_for(url, fetch_mode="headless")
    run = run_rule(rule["id"], debug=True)
    assert run["status"] == "succeeded", run["error"]
    assert run["fetch_mode"] == "headless" and run["debug_output"]["extracted"] == "Rendered 42"
    # The same page over plain HTTP has an empty div: forcing http mode finds nothing.
    forced = run_rule(rule["id"], force_mode="http")
    assert forced["status"] == "failed" and "matched nothing" in forced["error"]


def test_the_browser_cannot_reach_private_addresses(outside, rule_for, run_rule, settings):
    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"{OUTSIDE_HOST}/32"]
    internal = f"http://127.0.0.1:{outside.port}/hook/internal"
    extra = f'<img src="{internal}"><script>fetch("{internal}", {{method: "POST"}})</script>'
    rule = rule_for(outside.set_page("ssrf", RENDERED.format(extra=extra)), fetch_mode="headless")
    run = run_rule(rule["id"], debug=True)
    assert run["status"] == "succeeded", run["error"]
    assert any("127.0.0.1" in refusal for refusal in run["debug_output"]["blocked"])
    assert outside.hook_calls("internal") == []


def test_a_headless_redirect_to_loopback_is_refused(outside, rule_for, run_rule, settings):
    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"{OUTSIDE_HOST}/32"]
    outside.set_page("secret", "<p id='price'>internal</p>")
    secret = f"http://127.0.0.1:{outside.port}/page/secret"
    rule = rule_for(f"{outside.url}/redirect?to={secret}", fetch_mode="headless")
    run = run_rule(rule["id"])
    assert run["status"] == "failed" and "non-public address (127.0.0.1)" in run["error"]
    assert outside.requests("/redirect") and not outside.requests("/page/secret")


def test_the_browser_opens_no_websocket_of_its_own(outside, rule_for, run_rule):
    socket_url = f"ws://{OUTSIDE_HOST}:{outside.port}/hook/ws"
    # When the socket attempt is over, the page asks for one more URL: the run saw it end.
    extra = f'<script>new WebSocket("{socket_url}").onclose = () => fetch("/page/after-ws");</script>'
    rule = rule_for(outside.set_page("ws", RENDERED.format(extra=extra)), fetch_mode="headless")
    run = run_rule(rule["id"])
    assert run["status"] == "succeeded", run["error"]
    assert outside.requests("/page/after-ws") and not outside.requests("/hook/ws")


class UdpListener:
    """A real UDP socket on loopback that records every datagram it gets."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.received, self.stopping = [], threading.Event()
        self.thread = threading.Thread(target=self.listen, daemon=True)
        self.thread.start()

    def listen(self):
        while not self.stopping.is_set():
            try:
                self.received.append(self.socket.recvfrom(65535))
            except TimeoutError:
                continue

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.socket.close()


@pytest.fixture
def udp_listener():
    listener = UdpListener()
    yield listener
    listener.stop()


# ICE gathering sends STUN (and TURN allocations) over UDP to the servers named here; a
# second later, or when gathering ends, the page asks for one more URL: the attempt is over.
# A slow image holds the load event (and the run) until then.
WEBRTC = """<script>
function over() {{ fetch("/page/after-rtc"); }}
try {{
  const connection = new RTCPeerConnection({{iceServers: [
    {{urls: "stun:127.0.0.1:{port}"}},
    {{urls: "turn:127.0.0.1:{port}?transport=udp", username: "user", credential: "secret"}}]}});
  connection.createDataChannel("probe");
  connection.onicegatheringstatechange = () => {{ if (connection.iceGatheringState === "complete") over(); }};
  connection.createOffer().then((offer) => connection.setLocalDescription(offer)).catch(over);
}} catch (error) {{ over(); }}
setTimeout(over, 1500);
</script><img src="/page/slow">"""


def test_the_browser_sends_no_webrtc_udp(outside, rule_for, run_rule, udp_listener):
    outside.control("page", {"name": "slow", "body": "", "content_type": "image/gif", "delay": 2.5})
    url = outside.set_page("rtc", RENDERED.format(extra=WEBRTC.format(port=udp_listener.port)))
    rule = rule_for(url, fetch_mode="headless")
    run = run_rule(rule["id"])
    assert run["status"] == "succeeded", run["error"]
    assert outside.requests("/page/after-rtc"), "the page's WebRTC attempt did not finish"
    time.sleep(0.5)
    assert udp_listener.received == []
