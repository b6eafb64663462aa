"""Outbound HTTP for jobs: timeouts, a size cap, and no requests to private addresses.

Every URL a user gives us (a feed, an instance, a watched page, a webhook) is fetched by
our workers, inside our network: loopback, private, link-local (cloud metadata) and
other non-public addresses are refused, on every redirect hop. The check is made on the
address we connect to, not on the name: the host is resolved once, the addresses are
checked, and the connection is pinned to a checked address (Host header and TLS SNI keep
the name), so a DNS answer that changes between check and connect (DNS rebinding)
cannot lead us inside.

ALLOW_PRIVATE_FETCH opens every address (tests, private deployments);
OUTBOUND_ALLOWED_NETWORKS opens only the networks listed (an intranet wiki, say).
"""

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from urllib.parse import urljoin, urlsplit, urlunsplit

import certifi
import httpx
from django.conf import settings

REDIRECT_LIMIT = 5
USER_AGENT = "Conveyor/1.0 (+https://github.com/conveyor)"


class FetchRefused(Exception):
    """The URL may not be fetched (private address, bad scheme): a permanent error."""


class ResponseTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """Where a URL's request really goes: the checked address, and the name it serves."""

    url: str
    pinned_url: str
    host_header: str
    sni_hostname: str | None


@cache
def _allowed_networks(networks):
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def address_allowed(address):
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_global or settings.ALLOW_PRIVATE_FETCH:
        return True
    return any(ip in network for network in _allowed_networks(tuple(settings.OUTBOUND_ALLOWED_NETWORKS)))


def resolve(url):
    """Check the URL and pick the address to connect to. Raise FetchRefused if any address
    the host resolves to is not public (one bad answer among good ones is refused too)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"only http(s) URLs with a host can be fetched: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {parts.hostname}: {exc}") from exc
    addresses = sorted({info[4][0] for info in infos}, key=lambda address: ":" in address)  # IPv4 first
    for address in addresses:
        if not address_allowed(address):
            raise FetchRefused(f"{parts.hostname} resolves to a non-public address ({address})")
    return pin(parts, addresses[0])


def pin(parts, address):
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    is_name = parts.hostname != address.split("%")[0]
    host_header = parts.netloc.rpartition("@")[2]
    return Target(
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, "")),
        pinned_url=pinned,
        host_header=host_header,
        sni_hostname=parts.hostname if is_name and parts.scheme == "https" else None,
    )


def refuse_private(url):
    """Raise FetchRefused unless every address the URL's host resolves to may be fetched."""
    resolve(url)


@cache
def tls_context():
    """One TLS context per process: building one (reading the CA bundle) costs ~25 ms,
    more than a whole check of a small page."""
    return ssl.create_default_context(cafile=certifi.where())


def retry_after_seconds(value, default=60.0):
    """A Retry-After header's wait in seconds: it is seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return default


def new_client(timeout=None):
    return httpx.Client(
        timeout=httpx.Timeout(timeout or settings.OUTBOUND_TIMEOUT),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        verify=tls_context(),
    )


def get(client, url, *, headers=None, params=None, max_bytes=None):
    """GET with every redirect checked, and the body capped at max_bytes."""
    return request(client, "GET", url, headers=headers, params=params, max_bytes=max_bytes)


def request(client, method, url, *, headers=None, params=None, content=None, max_bytes=None, follow_redirects=True):
    """One request to a checked, pinned address; redirects followed hop by hop, each checked."""
    max_bytes = max_bytes or settings.OUTBOUND_MAX_BYTES
    if params:
        url = str(httpx.URL(url, params=params))
    for _ in range(REDIRECT_LIMIT + 1):
        target = resolve(url)
        response = read_capped(client, method, target, headers, content, max_bytes)
        # httpx calls every 3xx a redirect; a 304 Not Modified has no Location to follow.
        if not (follow_redirects and response.has_redirect_location):
            return response
        url = urljoin(target.url, response.headers["location"])
        if response.status_code in (301, 302, 303) and method != "HEAD":
            method, content = "GET", None
    raise FetchRefused(f"more than {REDIRECT_LIMIT} redirects")


def read_capped(client, method, target, headers, content, max_bytes):
    headers = {**(headers or {}), "Host": target.host_header}
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    sent = client.build_request(method, target.pinned_url, headers=headers, content=content, extensions=extensions)
    streamed = client.send(sent, stream=True)
    try:
        body = bytearray()
        for chunk in streamed.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise ResponseTooLarge(f"{target.url} sent more than {max_bytes} bytes")
    finally:
        streamed.close()
    # The response names the URL asked for, not the pinned address (errors, relative links).
    return httpx.Response(
        streamed.status_code,
        headers=streamed.headers,
        content=bytes(body),
        request=httpx.Request(method, target.url, headers=sent.headers),
    )
