"""Fetch a watched page: plain HTTP, or headless Chromium for pages built by JavaScript.

Both go through core.outbound: each address is checked and pinned, every redirect hop
too. In headless mode the browser itself never touches the network: every request it
makes (the page, its scripts, its XHR) is intercepted and answered by our checked client,
so a page cannot make the browser reach an internal address either.

Errors come in two kinds: PermanentFetchError (the rule must change: refused address,
404, no Chromium) fails the run at once; anything else is transient and retried.
"""

import os
import shutil
import time
from dataclasses import dataclass, field

import httpx
from django.conf import settings

from core import outbound
from core.failures import ExplainedError

# Statuses worth retrying: the page may well answer next time.
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
# Hop-by-hop or re-encoded headers: the browser gets the decoded body from us.
DROPPED_RESPONSE_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}


class PermanentFetchError(Exception):
    """Retrying will not help: the URL is refused, gone, or the setup lacks Chromium."""


class TransientFetchError(ExplainedError):
    """The page may answer next time (5xx, 429, timeouts). `wait`: the seconds a 429's
    Retry-After asked for, during which its whole domain is left alone."""

    def __init__(self, message, wait=None):
        super().__init__(message)
        self.wait = wait


@dataclass
class Page:
    status: int
    text: str
    content_type: str = ""
    requests: list = field(default_factory=list)
    blocked: list = field(default_factory=list)
    duration_ms: int = 0
    retry_after: str | None = None


def fetch(url, *, mode, headers=None):
    """The page at `url` as text, by `mode` ("http" or "headless")."""
    started = time.monotonic()
    page = fetch_headless(url, headers or {}) if mode == "headless" else fetch_http(url, headers or {})
    check_status(url, page)
    page.duration_ms = int((time.monotonic() - started) * 1000)
    return page


def check_status(url, page):
    if page.status == 429:
        raise TransientFetchError(f"{url} answered 429", wait=outbound.retry_after_seconds(page.retry_after))
    if page.status in TRANSIENT_STATUSES:
        raise TransientFetchError(f"{url} answered {page.status}")
    if page.status >= 400:
        raise PermanentFetchError(f"{url} answered {page.status}")


def fetch_http(url, headers):
    try:
        with outbound.new_client() as client:
            response = outbound.get(client, url, origin_headers=headers)
    except (outbound.FetchRefused, outbound.ResponseTooLarge) as exc:
        raise PermanentFetchError(str(exc)) from None
    except httpx.HTTPError as exc:
        raise TransientFetchError(f"{type(exc).__name__}: {exc}") from None
    return Page(
        response.status_code,
        response.text,
        response.headers.get("content-type", ""),
        retry_after=response.headers.get("retry-after"),
    )


# --- headless Chromium ----------------------------------------------------------------


def find_chromium(configured=""):
    """The Chromium binary: CHROMIUM_PATH when it is found, else the usual names on PATH;
    None if none. Reads no settings, so `make run` and the tests can ask before Django is set up."""
    names = ((configured,) if configured else ()) + ("chromium", "chromium-browser", "google-chrome")
    return next(filter(None, map(shutil.which, names)), None)


def chromium_path():
    found = find_chromium(settings.CHROMIUM_PATH)
    if not found:
        raise PermanentFetchError(
            "headless mode needs Chromium: install it (Debian: apt install chromium) or set CHROMIUM_PATH"
        )
    return found


# How long a loaded page may keep fetching before we read it anyway.
SETTLE_TIMEOUT_MS = 5000
# Defence in depth: anything the browser would fetch itself, past our routes (a WebSocket,
# a prefetch), goes to a proxy that is not there, loopback included.
SEALED_NETWORK = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
# WebRTC sends UDP (STUN, TURN, peer checks) past the proxy and our routes, to any address a
# page names. This policy allows only UDP that goes through the proxy, and no proxy carries
# UDP: so none (tests/alerts/test_headless.py: without it, STUN reaches a loopback listener).
NO_WEBRTC_UDP = [
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--force-webrtc-ip-handling-policy",
]


def chromium_args():
    # Chromium refuses to start as root with its sandbox on (containers, CI).
    return SEALED_NETWORK + NO_WEBRTC_UDP + (["--no-sandbox"] if os.geteuid() == 0 else [])


def fetch_headless(url, headers):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    guard = GuardedRoutes(url, headers)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=chromium_args())
            try:
                context = browser.new_context(service_workers="block")
                context.route("**/*", guard.answer)
                context.route_web_socket("**/*", lambda socket: socket.close())
                page = context.new_page()
                response = page.goto(url, wait_until="load", timeout=settings.HEADLESS_TIMEOUT * 1000)
                settle(page)
                html = page.content()
                retry_after = response.headers.get("retry-after") if response else None
            finally:
                browser.close()
    except PlaywrightError as exc:
        guard.raise_refusal()
        raise TransientFetchError(f"headless Chromium: {str(exc).splitlines()[0]}") from None
    finally:
        guard.close()
    # A refused image or script is blocked and listed in the run's debug output; only a
    # refused page fails the run (above, as the navigation fails).
    return Page(
        response.status if response else 200, html, "text/html", guard.requests, guard.refusals, retry_after=retry_after
    )


def settle(page):
    """Give scripts that fetch more after the load event a moment (no request for 500 ms),
    but never fail a page that keeps polling."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_load_state("networkidle", timeout=SETTLE_TIMEOUT_MS)
    except PlaywrightTimeout:
        pass


class GuardedRoutes:
    """Answers every request the browser makes, through our checked, pinned client.

    Redirects are followed here, each hop checked, and the browser gets the final answer:
    Chromium follows a redirect it was handed without asking the route again, so passing
    a 3xx on would let it reach wherever the Location points.

    The rule's headers (credentials, often) are added here, not by the browser, and only to
    requests for the rule's own origin: not to the page's third-party scripts and images,
    nor to a redirect hop elsewhere.
    """

    def __init__(self, url="", headers=None):
        self.origin = outbound.origin_of(url)
        self.rule_headers = headers or {}
        self.client = outbound.new_client()
        self.refusals = []
        self.requests = []

    def answer(self, route):
        request = route.request
        if not request.url.startswith(("http://", "https://")):
            route.continue_()  # data: and blob: URLs never leave the browser
            return
        self.requests.append(request.url)
        try:
            response = outbound.request(
                self.client,
                request.method,
                request.url,
                headers=forwarded_headers(request.headers),
                origin_headers=self.rule_headers if outbound.origin_of(request.url) == self.origin else None,
                content=request.post_data_buffer,
            )
        except outbound.FetchRefused as exc:
            self.refusals.append(str(exc))
            route.abort("blockedbyclient")
            return
        except (httpx.HTTPError, outbound.ResponseTooLarge):
            route.abort("failed")
            return
        headers = {
            name: value for name, value in response.headers.items() if name.lower() not in DROPPED_RESPONSE_HEADERS
        }
        route.fulfill(status=response.status_code, headers=headers, body=response.content)

    def raise_refusal(self):
        if self.refusals:
            raise PermanentFetchError(self.refusals[0])

    def close(self):
        self.client.close()


def forwarded_headers(headers):
    return {name: value for name, value in headers.items() if name.lower() not in ("host", "content-length")}
