"""Outbound HTTP for jobs: timeouts, a size cap, and no requests to private addresses.

Every URL a user gives us (a feed, an instance, a watched page, a webhook, a channel) is
fetched by our workers, inside our network: loopback, private, link-local (cloud
metadata) and other non-public addresses are refused, on every redirect hop. The check is
made on the address we connect to, not on the name: the host is resolved once, the
addresses are checked, and the connection is pinned to a checked address (Host header
and TLS SNI keep the name), so a DNS answer that changes between check and connect (DNS
rebinding) cannot lead us inside.

An address is judged by where it really leads: IPv6 forms that carry an IPv4 address
(mapped, NAT64, 6to4, IPv4-compatible, Teredo) by that IPv4 address, and numeric host
spellings (2130706433, 0x7f.1, 0177.0.0.1) as the address they spell.

ALLOW_PRIVATE_FETCH opens every address (tests, private deployments);
OUTBOUND_ALLOWED_NETWORKS opens only the networks listed (an intranet wiki, say);
OUTBOUND_DNS_SERVERS makes names resolve through the nameservers listed, not the system's.

Libraries that speak HTTP through `requests` (apprise) get the same guard through
core.outbound_requests.RequestsAdapter, and sockets opened inside `sockets_checked()` may
only reach addresses this module allows.
"""

import contextvars
import ipaddress
import re
import socket
import ssl
import sys
from contextlib import contextmanager
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


# --- which addresses may be reached -----------------------------------------------------------

# IPv6 prefixes whose last 32 bits are the IPv4 address the traffic goes on to (RFC 6052,
# RFC 8215). `is_global` calls 64:ff9b::7f00:1 public: it is 127.0.0.1 behind a NAT64.
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# ::a.b.c.d, the deprecated "IPv4-compatible" form: some stacks still send it to a.b.c.d.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Deprecated site-local (RFC 3879): private in practice, yet `is_global` says public.
SITE_LOCAL = ipaddress.ip_network("fec0::/10")


@cache
def _allowed_networks(networks):
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def embedded_ipv4(ip):
    """The IPv4 address an IPv6 address leads to, when it carries one; else None."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in IPV4_COMPATIBLE or any(ip in network for network in NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip):
    """A unicast address on the public internet, judged by where it really leads."""
    if ip.version == 6:
        if ip in SITE_LOCAL:
            return False
        if ip.teredo:  # a tunnel: both its relay and its far end must be public
            return all(map(is_public, ip.teredo))
        carried = embedded_ipv4(ip)
        if carried is not None:
            return is_public(carried)
    return ip.is_global and not ip.is_multicast


def address_allowed(address):
    ip = ipaddress.ip_address(address.split("%")[0])
    if settings.ALLOW_PRIVATE_FETCH or is_public(ip):
        return True
    candidates = [candidate for candidate in (ip, embedded_ipv4(ip)) if candidate is not None]
    networks = _allowed_networks(tuple(settings.OUTBOUND_ALLOWED_NETWORKS))
    return any(candidate in network for candidate in candidates for network in networks)


# --- from a host to its checked addresses ------------------------------------------------------

# What inet_aton (and so the system resolver) reads as an IPv4 address: one to four parts,
# each decimal, octal (0177) or hex (0x7f). 2130706433 and 0x7f.1 are 127.0.0.1.
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


def ip_literal(host):
    """The address a host spells, in any notation the resolvers accept; None for a name."""
    bare = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not NUMERIC_HOST.match(bare):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare.rstrip(".")))
    except OSError:
        raise FetchRefused(f"{host} is neither an address nor a host name") from None


def is_localhost(name):
    # RFC 6761: localhost is loopback whatever a resolver (or a configured nameserver) says.
    name = name.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def lookup(host, port):
    """Every address `host` stands for: itself when it is one, else what DNS answers."""
    literal = ip_literal(host)
    if literal is not None:
        return [str(literal)]
    if is_localhost(host):
        return ["127.0.0.1", "::1"]
    if settings.OUTBOUND_DNS_SERVERS:
        return dns_lookup(host)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    except UnicodeError:
        # A label over 63 characters, or one IDNA cannot encode: no such host can exist.
        raise FetchRefused(f"{host[:100]!r} is not a valid host name") from None
    return [info[4][0] for info in infos]


def nameserver(entry):
    """("127.0.0.1", 5353) from "127.0.0.1:5353": "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6
    (config/settings.py checks them); port 53 when none is given."""
    if entry.startswith("["):
        host, _, port = entry[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
    return host, int(port or 53)


def dns_lookup(host):
    """A and AAAA records from OUTBOUND_DNS_SERVERS only: no hosts file, no search domains."""
    import dns.exception
    import dns.nameserver
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(*nameserver(e)) for e in settings.OUTBOUND_DNS_SERVERS]
    resolver.lifetime = settings.OUTBOUND_TIMEOUT
    addresses = []
    for record_type in ("A", "AAAA"):
        try:
            answer = resolver.resolve(host, record_type, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {type(exc).__name__}") from None
        addresses += [record.address for record in answer]
    if not addresses:
        raise httpx.ConnectError(f"cannot resolve {host}: no such name")
    return addresses


def checked_addresses(host, port):
    """The addresses to connect to for host:port, IPv4 first. Raise FetchRefused if any
    address the host resolves to is not public (one bad answer among good ones is refused
    too: a connection might pick it)."""
    addresses = sorted(dict.fromkeys(lookup(host, port)), key=lambda address: ":" in address)
    for address in addresses:
        if not address_allowed(address):
            verb = "is" if ip_literal(host) is not None else "resolves to"
            raise FetchRefused(f"{host} {verb} a non-public address ({described(address)})")
    return addresses


def described(address):
    carried = embedded_ipv4(ipaddress.ip_address(address.split("%")[0]))
    return f"{address}, which leads to {carried}" if carried else address


def default_port(scheme):
    return 443 if scheme == "https" else 80


def resolve(url):
    """Check the URL and pick the address to connect to (see checked_addresses)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"only http(s) URLs with a host can be fetched: {url!r}")
    try:
        port = parts.port or default_port(parts.scheme)
    except ValueError:
        raise FetchRefused(f"{url!r} has no valid port") from None
    return pin(parts, checked_addresses(parts.hostname, port)[0])


def pin(parts, address):
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    is_name = ip_literal(parts.hostname) is None
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


def origin_of(url):
    """(scheme, host, port): where credentials given for a URL may go."""
    parts = urlsplit(url)
    try:
        port = parts.port or default_port(parts.scheme)
    except ValueError:
        port = None
    return parts.scheme.lower(), parts.hostname, port


# --- the client ----------------------------------------------------------------------------------


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


def new_client(timeout=None, verify=True):
    return httpx.Client(
        timeout=httpx.Timeout(timeout or settings.OUTBOUND_TIMEOUT),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        verify=tls_context() if verify else False,
        trust_env=False,  # an environment proxy would connect to names we never checked
    )


def get(client, url, *, headers=None, origin_headers=None, params=None, max_bytes=None):
    """GET with every redirect checked, and the body capped at max_bytes."""
    return request(
        client, "GET", url, headers=headers, origin_headers=origin_headers, params=params, max_bytes=max_bytes
    )


def request(
    client,
    method,
    url,
    *,
    headers=None,
    origin_headers=None,
    params=None,
    content=None,
    max_bytes=None,
    follow_redirects=True,
):
    """One request to a checked, pinned address; redirects followed hop by hop, each checked.
    `origin_headers` (credentials) go only to hops on the URL's own origin: a redirect to
    another scheme, host or port does not carry them."""
    max_bytes = max_bytes or settings.OUTBOUND_MAX_BYTES
    if params:
        url = str(httpx.URL(url, params=params))
    origin = origin_of(url)
    for _ in range(REDIRECT_LIMIT + 1):
        target = resolve(url)
        sent_headers = hop_headers(headers, origin_headers if origin_of(url) == origin else None)
        response = read_capped(client, method, target, sent_headers, content, max_bytes)
        # httpx calls every 3xx a redirect; a 304 Not Modified has no Location to follow.
        if not (follow_redirects and response.has_redirect_location):
            return response
        url = urljoin(target.url, response.headers["location"])
        if response.status_code in (301, 302, 303) and method != "HEAD":
            method, content = "GET", None
    raise FetchRefused(f"more than {REDIRECT_LIMIT} redirects")


def hop_headers(headers, origin_headers):
    """Both sets merged, names compared without case: a rule's User-Agent replaces the browser's."""
    merged = httpx.Headers(headers or {})
    merged.update(origin_headers or {})
    return merged


def read_capped(client, method, target, headers, content, max_bytes):
    headers = httpx.Headers(headers or {})
    headers["Host"] = target.host_header
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


# --- sockets that libraries open themselves -------------------------------------------------------

_socket_check = contextvars.ContextVar("outbound_socket_check", default=None)
_audit_installed = False
AUDITED_EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg"}


class SocketRefused(ConnectionRefusedError):
    """Raised into a library that tried to reach an address we do not allow."""


@contextmanager
def sockets_checked(on_refusal=None):
    """Inside, every socket this context opens may only connect or send to an address
    `address_allowed` accepts: a last line for connections we cannot pin ourselves (apprise's
    SMTP resolves the name again). Threads that copy the context (apprise's do) are covered."""
    install_socket_audit()
    token = _socket_check.set(on_refusal or (lambda problem: None))
    try:
        yield
    finally:
        _socket_check.reset(token)


def install_socket_audit():
    global _audit_installed
    if not _audit_installed:
        _audit_installed = True
        sys.addaudithook(audit_socket)  # for the life of the process: hooks cannot be removed


def audit_socket(event, args):
    if event not in AUDITED_EVENTS:
        return
    on_refusal = _socket_check.get()
    if on_refusal is None or args[1] is None:
        return
    problem = socket_problem(args[1])
    if problem:
        on_refusal(problem)
        raise SocketRefused(problem)


def socket_problem(address):
    if not isinstance(address, tuple):
        return f"a local socket ({address!r}) is not allowed"
    host, port = address[0], address[1]
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return f"a connection by name ({host}) cannot be checked"
    if address_allowed(host) or (host, port) in map(nameserver, settings.OUTBOUND_DNS_SERVERS):
        return None
    return f"a connection to a non-public address ({host}) was refused"
