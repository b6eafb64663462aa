"""Outbound HTTP for jobs: timeouts, a size cap, and no requests to private addresses.

Every URL a user gives us (a feed, an instance) is fetched by our workers, inside our
network: loopback, private, link-local (cloud metadata) and other non-public addresses
are refused, on every redirect hop, after resolving the host name. ALLOW_PRIVATE_FETCH
opens them for tests and private deployments.
"""

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

REDIRECT_LIMIT = 5
USER_AGENT = "Conveyor/1.0 (+https://github.com/conveyor)"


class FetchRefused(Exception):
    """The URL may not be fetched (private address, bad scheme): a permanent error."""


class ResponseTooLarge(Exception):
    pass


def refuse_private(url):
    """Raise FetchRefused unless every address the URL's host resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"only http(s) URLs with a host can be fetched: {url!r}")
    if settings.ALLOW_PRIVATE_FETCH:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {parts.hostname}: {exc}") from exc
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise FetchRefused(f"{parts.hostname} resolves to a non-public address ({address})")


def new_client(timeout=None):
    return httpx.Client(
        timeout=httpx.Timeout(timeout or settings.OUTBOUND_TIMEOUT),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


def get(client, url, *, headers=None, params=None, max_bytes=None):
    """GET with every redirect checked, and the body capped at max_bytes."""
    max_bytes = max_bytes or settings.OUTBOUND_MAX_BYTES
    for _ in range(REDIRECT_LIMIT + 1):
        refuse_private(url)
        response = read_capped(client, url, headers, params, max_bytes)
        # httpx calls every 3xx a redirect; a 304 Not Modified has no Location to follow.
        if not response.has_redirect_location:
            return response
        url, params = urljoin(str(response.url), response.headers["location"]), None
    raise FetchRefused(f"more than {REDIRECT_LIMIT} redirects")


def read_capped(client, url, headers, params, max_bytes):
    with client.stream("GET", url, headers=headers, params=params) as streamed:
        body = bytearray()
        for chunk in streamed.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise ResponseTooLarge(f"{url} sent more than {max_bytes} bytes")
    return httpx.Response(
        streamed.status_code, headers=streamed.headers, content=bytes(body), request=streamed.request
    )
