"""One module per platform; each turns that platform's responses into NormalizedPost.

A module exposes `fetch(client, source, cursor, *, max_pages, page_size)` returning a
FetchResult: the posts newer than `cursor` (newest first), the cursor the next fetch
starts from, and how many pages it read. A platform users act on also exposes
`act(client, base_url, token, *, action, status_id, text, idempotency_key)`, and
`done_before(client, base_url, token, *, action, status_id)`: whether the instance shows a
like or boost already done in the account's name (the remote id, "" when it has none to
give) or not (None), asked before an action cut short mid-request is sent again.
"""

import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import nh3
from django.utils.dateparse import parse_datetime

from core import outbound
from core.failures import ExplainedError
from core.outbound import retry_after_seconds


class SourceError(ExplainedError):
    """The remote answered badly (5xx, malformed body): worth retrying."""


class Refused(Exception):
    """The remote refused for good (401, 403, 404, 422): retrying will not help."""


class RateLimited(Exception):
    """The remote asked us to slow down: wait `seconds`, use no attempt."""

    def __init__(self, seconds, message=""):
        super().__init__(message or f"rate limited for {seconds:.0f}s")
        self.seconds = seconds


@dataclass
class NormalizedPost:
    remote_id: str
    url: str = ""
    author_name: str = ""
    author_url: str = ""
    title: str = ""
    content_html: str = ""
    content_text: str = ""
    published_at: datetime | None = None
    media: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)


@dataclass
class FetchResult:
    posts: list
    cursor: dict
    pages: int
    # Seconds the remote asked us to leave it alone after this fetch (budget spent).
    host_wait: float = 0.0


def sanitized(raw_html):
    """(safe HTML, plain text) of untrusted HTML."""
    raw_html = raw_html or ""
    text = html.unescape(nh3.clean(re.sub(r"<(br|/p)\b[^>]*>", "\n", raw_html, flags=re.I), tags=set()))
    return nh3.clean(raw_html), re.sub(r"[ \t]+", " ", text).strip()


# Post.url and Post.author_url hold at most this many characters.
MAX_URL_LENGTH = 1000


def web_url(value):
    """`value` if it is an absolute http(s) URL, else "". A remote's answer is as untrusted
    as its posts: a `javascript:` or `data:` link stored as a post's URL would run in the
    page of whoever opens it."""
    value = (value or "").strip() if isinstance(value, str) else ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(value) > MAX_URL_LENGTH:
        return ""
    return value


def web_urls(values):
    return [url for url in map(web_url, values) if url]


def parse_time(value):
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


PERMANENT = {400, 401, 403, 404, 410, 422}


def check_response(response):
    """Raise RateLimited on 429, Refused when retrying cannot help, SourceError otherwise."""
    if response.status_code == 429:
        raise RateLimited(retry_after_seconds(response.headers.get("retry-after")), f"429 from {response.url.host}")
    if response.status_code in PERMANENT:
        raise Refused(f"{response.status_code} from {response.url}: {response.text[:200]}")
    if response.status_code >= 400:
        raise SourceError(f"{response.status_code} from {response.url}")


def json_of(response):
    check_response(response)
    try:
        return response.json()
    except ValueError:
        raise SourceError(f"malformed JSON from {response.url}") from None


def send_json(client, method, url, body, headers):
    """A request in a user's name: through the guard like every outbound call (the address
    checked and pinned, the answer capped), never redirected, where a token could follow."""
    headers = {**headers, "Content-Type": "application/json"}
    content = json.dumps(body).encode()
    return outbound.request(client, method, url, headers=headers, content=content, follow_redirects=False)


def read_json(client, url, headers):
    """A GET in a user's name: guarded and never redirected, like send_json."""
    return json_of(outbound.request(client, "GET", url, headers=headers, follow_redirects=False))


def module_for(platform):
    from . import feeds, lemmy, mastodon, peertube

    return {"mastodon": mastodon, "lemmy": lemmy, "peertube": peertube, "feed": feeds}[platform]
