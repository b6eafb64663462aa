"""Send a message to a channel: any apprise URL we can guard, or a webhook signed with the channel's secret.

Apprise speaks to Slack, Discord, email, ntfy, Telegram, JSON webhooks and about a hundred
more. Our own signed webhook posts JSON with an HMAC-SHA256 signature over
"<timestamp>.<body>" in X-Conveyor-Signature, so the receiver can tell it is us, and fresh.

A channel URL is a user's choice of where our workers connect, so apprise is held to the
same guard as every other outbound call (core/outbound.py), at save and again at send:

- the hosts checked are the ones apprise itself will contact, read from apprise's own parse
  of the URL (`json://x@169.254.169.254@example.com` goes to 169.254.169.254, and so is
  checked as such), including an email channel's SMTP server (`?smtp=`);
- apprise's HTTP goes through outbound_requests.RequestsAdapter (pinned address, every redirect hop
  checked, body capped), and every socket it opens during a send may only reach an allowed
  address (outbound.sockets_checked: apprise's SMTP resolves the name again);
- services apprise reaches over protocols of their own (IRC, syslog, MQTT, XMPP…) cannot be
  pinned or capped: they are refused;
- a failed delivery says what failed in our words: apprise's log carries the remote's answers,
  which would turn channel tests into a scanner of whatever the remote can reach.
"""

import contextvars
import functools
import hashlib
import hmac
import json
import secrets
import sys
import time
from types import ModuleType

import httpx
from django.conf import settings

from core import outbound
from core.failures import ExplainedError

# Network libraries apprise plugins use besides `requests` (guarded by our adapter) and smtplib
# (email, guarded below): we can neither pin nor cap them, so their services are refused.
RAW_TRANSPORTS = {
    "apprise.utils.socket",
    "dbus",
    "gi",
    "gntp",
    "hid",
    "paho",
    "pika",
    "proton",
    "slixmpp",
    "smpplib",
    "socket",
    "subprocess",
    "syslog",
    "win32api",
}


class DeliveryFailed(ExplainedError):
    def __init__(self, message, *, permanent=False):
        super().__init__(message)
        self.permanent = permanent


class ChannelRefused(Exception):
    """This URL cannot be a channel (unreadable, unguardable, or aimed at a private address)."""


def new_webhook_secret():
    return secrets.token_urlsafe(32)


# apprise (~7 MB besides `requests`, which DRF imports anyway) is imported by the functions
# that use it: the web process once someone saves a channel, a worker once it sends to one,
# and the scheduler never.


def apprise_plugin(url):
    import apprise

    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def is_email(plugin):
    from apprise.plugins.email.base import NotifyEmail

    return isinstance(plugin, NotifyEmail)


def apprise_service(url):
    """The service an apprise URL points at ("JSON", "Slack"…), or None if apprise cannot read it."""
    plugin = apprise_plugin(url)
    return None if plugin is None else service_name(plugin)


def service_name(plugin):
    return str(getattr(plugin, "service_name", "") or type(plugin).__name__)


# --- what an apprise URL will reach ----------------------------------------------------------


def check_apprise_url(url):
    """The plugin apprise makes of `url`, once we know it can be guarded and every host it
    will contact is allowed. Raise ChannelRefused (or FetchRefused) otherwise; a name that
    does not resolve raises httpx.ConnectError (it may resolve later)."""
    plugin = apprise_plugin(url)
    if plugin is None:
        raise ChannelRefused("Apprise cannot read this URL (see apprise's list of services).")
    unguarded = set() if is_email(plugin) else raw_transports(type(plugin))
    if unguarded:
        raise ChannelRefused(
            f"{service_name(plugin)} channels are not supported: apprise reaches them over a protocol of "
            f"their own ({', '.join(sorted(unguarded))}), which cannot be pinned or capped like HTTP. "
            "Use an HTTP(S) or email service."
        )
    for host, port in contacted_hosts(plugin):
        outbound.checked_addresses(host, port)
    return plugin


def contacted_hosts(plugin):
    """(host, port) pairs apprise will connect to, as apprise parsed them: an email channel's
    SMTP server, or the host of a service whose URL names one (json://, ntfy://, gotify://…).
    Services at a fixed address (slack://, tgram://, ntfy's cloud mode) name none: their host
    field is a token or a topic."""
    if is_email(plugin):
        return [(plugin.smtp_host, plugin.port or 25)]
    if getattr(plugin, "mode", None) == "cloud":
        return []
    if "host" in plugin.template_tokens and plugin.host:
        return [(plugin.host.strip("[]"), plugin.port or (443 if plugin.secure else 80))]
    return []


@functools.cache
def raw_transports(plugin_class):
    """The non-HTTP network libraries used by the plugin's modules (its package and bases).
    Kept per class: the scan of sys.modules took a millisecond and more of every send, and a
    plugin's modules are all loaded once apprise has made one of its objects."""
    found = set()
    for module in plugin_modules(plugin_class):
        for value in vars(module).values():
            name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
            if isinstance(name, str) and (name in RAW_TRANSPORTS or name.partition(".")[0] in RAW_TRANSPORTS):
                found.add(name)
    return found


def plugin_modules(plugin_class):
    names = {cls.__module__ for cls in plugin_class.__mro__ if cls.__module__.startswith("apprise.plugins.")}
    # A plugin that is a package (irc/, nostr/) keeps its transport in a sibling module.
    packages = {name.rpartition(".")[0] for name in names if name.count(".") >= 3}
    return [
        module for name, module in list(sys.modules.items()) if name in names or name.rpartition(".")[0] in packages
    ]


# --- sending -------------------------------------------------------------------------------------


def send(channel, message):
    """Deliver `message` ({"title", "body", …}) to the channel, or raise DeliveryFailed."""
    if channel.kind == channel.Kind.WEBHOOK:
        send_webhook(channel.config["url"], channel.config["secret"], message)
    else:
        send_apprise(channel.config["url"], message)


def send_apprise(url, message):
    plugin = checked_plugin(url)
    delivered, adapter = notify_guarded(plugin, message)
    if delivered:
        return
    service = service_name(plugin)
    if adapter.refusals:
        raise DeliveryFailed(f"{service}: refused: {adapter.refusals[0]}", permanent=True)
    if adapter.problems:
        raise DeliveryFailed(f"{service}: {adapter.problems[-1]}")
    raise DeliveryFailed(f"{service}: the message was not accepted (the server refused it or could not be reached)")


def checked_plugin(url):
    """The checked plugin, again at send: the URL's host may resolve elsewhere by now."""
    try:
        plugin = check_apprise_url(url)
    except (ChannelRefused, outbound.FetchRefused) as exc:
        raise DeliveryFailed(f"refused: {exc}", permanent=True) from None
    except httpx.HTTPError:
        plugin = apprise_plugin(url)  # unresolved: apprise's own attempt will say so, still guarded
    if hasattr(plugin, "socket_connect_timeout"):  # SMTP: our time limit, not apprise's 15 s
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, settings.OUTBOUND_TIMEOUT)
    return plugin


def notify_guarded(plugin, message):
    """Send with apprise's HTTP on our transport and its sockets checked. Returns (delivered,
    adapter): the adapter lists what went wrong, in our words."""
    install_requests_guard()
    install_smtp_reply_cap()
    from core.outbound_requests import RequestsAdapter  # requests: only where a send needs it

    adapter = RequestsAdapter()
    token = _transport.set(adapter)
    try:
        with outbound.sockets_checked(adapter.refusals.append):
            delivered = plugin.notify(title=message["title"], body=message["body"])
    finally:
        _transport.reset(token)
    return bool(delivered), adapter


# apprise calls requests.post() and friends, each making its own Session: while a send runs in
# this context (apprise copies it into its worker threads), every Session gets our adapter.
_transport = contextvars.ContextVar("apprise_transport", default=None)


# smtplib caps each reply line, not their number: a hostile server answering with endless
# "250-" continuation lines would fill the worker's memory until the job's timeout. Within a
# send, one SMTP connection may read this much of replies; then it is dropped, as refused.
SMTP_REPLIES_MAX_BYTES = 1 << 20


def install_smtp_reply_cap():
    import smtplib

    original = smtplib.SMTP.getreply
    if getattr(original, "conveyor_guard", False):
        return

    def getreply(smtp):
        adapter = _transport.get()
        if adapter is not None and smtp.file is None and smtp.sock is not None:
            smtp.file = CappedReplies(smtp.sock.makefile("rb"), adapter.refusals.append)
        return original(smtp)

    getreply.conveyor_guard = True
    smtplib.SMTP.getreply = getreply


class CappedReplies:
    """The file smtplib reads an SMTP server's replies from, that fails (OSError: smtplib
    closes the connection) once they pass SMTP_REPLIES_MAX_BYTES."""

    def __init__(self, file, on_refusal):
        self.file, self.on_refusal, self.left = file, on_refusal, SMTP_REPLIES_MAX_BYTES

    def readline(self, size=-1):
        line = self.file.readline(size)
        self.left -= len(line)
        if self.left < 0:
            problem = f"the SMTP server's replies passed {SMTP_REPLIES_MAX_BYTES:,} bytes"
            self.on_refusal(problem)
            raise OSError(problem)
        return line

    def close(self):
        self.file.close()


def install_requests_guard():
    import requests

    original_get_adapter, original_request = requests.Session.get_adapter, requests.Session.request
    if getattr(original_get_adapter, "conveyor_guard", False):
        return

    def get_adapter(session, url):
        adapter = _transport.get()
        return original_get_adapter(session, url) if adapter is None else adapter

    def request(session, *args, **kwargs):
        # Nothing from the worker's environment goes with a user's message: not ~/.netrc's
        # credentials (a "default" entry would be sent to any host), nor proxies or a CA
        # bundle. It also spares reading the environment twice a send (~0.5 ms).
        if _transport.get() is not None:
            session.trust_env = False
        return original_request(session, *args, **kwargs)

    get_adapter.conveyor_guard = True
    requests.Session.get_adapter, requests.Session.request = get_adapter, request


def signature(secret, timestamp, body):
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def send_webhook(url, secret, message):
    body = json.dumps(message, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Conveyor-Timestamp": timestamp,
        "X-Conveyor-Signature": signature(secret, timestamp, body),
    }
    try:
        with outbound.new_client() as client:
            response = outbound.request(client, "POST", url, headers=headers, content=body, follow_redirects=False)
    except outbound.FetchRefused as exc:
        raise DeliveryFailed(str(exc), permanent=True) from None
    except (httpx.HTTPError, outbound.ResponseTooLarge) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        raise DeliveryFailed(f"the webhook answered {response.status_code}")
