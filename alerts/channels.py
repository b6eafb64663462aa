"""Send a message to a channel: any apprise URL, or a webhook signed with the channel's secret.

Apprise speaks to Slack, Discord, email, ntfy, Telegram, JSON webhooks and about a hundred
more. Our own signed webhook posts JSON with an HMAC-SHA256 signature over
"<timestamp>.<body>" in X-Conveyor-Signature, so the receiver can tell it is us, and fresh.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from urllib.parse import urlsplit

import apprise
import httpx

from core import outbound

# Apprise schemes that post to a server the user names: checked like any outbound URL.
# (Other schemes name a service: slack://, discord://, tgram://…)
ENDPOINT_SCHEMES = {"json", "jsons", "xml", "xmls", "form", "forms"}


class DeliveryFailed(Exception):
    def __init__(self, message, *, permanent=False):
        super().__init__(message)
        self.permanent = permanent


def new_webhook_secret():
    return secrets.token_urlsafe(32)


def apprise_service(url):
    """The service an apprise URL points at ("JSON", "Slack"…), or None if apprise cannot read it."""
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return None
    return str(getattr(plugin, "service_name", "") or urlsplit(url).scheme)


def send(channel, message):
    """Deliver `message` ({"title", "body", …}) to the channel, or raise DeliveryFailed."""
    if channel.kind == channel.Kind.WEBHOOK:
        send_webhook(channel.config["url"], channel.config["secret"], message)
    else:
        send_apprise(channel.config["url"], message)


def send_apprise(url, message):
    if urlsplit(url).scheme.lower() in ENDPOINT_SCHEMES:
        refuse_private_endpoint(url)
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryFailed("apprise cannot read this channel's URL", permanent=True)
    with apprise.LogCapture(level=logging.WARNING) as problems:
        delivered = notifier.notify(title=message["title"], body=message["body"])
    if not delivered:
        raise DeliveryFailed(problems.getvalue().strip() or "apprise could not deliver the message")


def refuse_private_endpoint(url):
    parts = urlsplit(url)
    scheme = "https" if parts.scheme.endswith("s") else "http"
    try:
        outbound.refuse_private(f"{scheme}://{parts.netloc.rpartition('@')[2]}/")
    except outbound.FetchRefused as exc:
        raise DeliveryFailed(str(exc), permanent=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(str(exc)) from None


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
