"""Mastodon timelines: public, local, a hashtag, an account's statuses.

The first fetch reads the newest page and follows `Link: rel="next"` (older) up to the
page bound. Later fetches ask for what is newer than the cursor with `min_id`, page
after page, so nothing between two fetches is skipped. A 429 means: wait, and read
nothing now. X-RateLimit-Remaining 0 means: keep this page, stop, and leave the
instance alone until X-RateLimit-Reset.
"""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from core import outbound

from . import (
    FetchResult,
    NormalizedPost,
    SourceError,
    json_of,
    parse_time,
    read_json,
    sanitized,
    send_json,
    web_url,
    web_urls,
)


def endpoint(source):
    base = source.url.rstrip("/")
    target = source.target or "public"
    if target == "public":
        return f"{base}/api/v1/timelines/public", {}
    if target == "local":
        return f"{base}/api/v1/timelines/public", {"local": "true"}
    kind, _, value = target.partition(":")
    if kind == "tag" and value:
        return f"{base}/api/v1/timelines/tag/{value}", {}
    if kind == "account" and value:
        return f"{base}/api/v1/accounts/{value}/statuses", {}
    raise ValueError(f"unknown Mastodon target {target!r}")


def fetch(client, source, cursor, *, max_pages, page_size):
    url, params = endpoint(source)
    params["limit"] = min(page_size, 40)
    newest = cursor.get("newest_id")
    walk = Walk(client, max_pages)
    if newest:
        walk.newer(url, params, newest)
    else:
        walk.older(url, params)
    posts = [normalize(status) for status in sorted(walk.statuses, key=id_order, reverse=True)]
    newest_id = posts[0].remote_id if posts else newest
    cursor = {"newest_id": newest_id} if newest_id else {}
    return FetchResult(posts=posts, cursor=cursor, pages=walk.pages, host_wait=walk.host_wait)


class Walk:
    """Pages read by one fetch, stopping at the page bound or when the budget is spent."""

    def __init__(self, client, max_pages):
        self.client, self.max_pages = client, max_pages
        self.statuses, self.pages, self.host_wait = [], 0, 0.0

    def more(self):
        return self.pages < self.max_pages and not self.host_wait

    def read(self, url, params):
        response = outbound.get(self.client, url, params=params)
        page = json_of(response)
        if not isinstance(page, list):
            raise SourceError(f"{response.url} did not answer with a list of statuses")
        self.statuses += page
        self.pages += 1
        if response.headers.get("x-ratelimit-remaining") == "0":
            self.host_wait = seconds_until(response.headers.get("x-ratelimit-reset"))
        return response, page

    def older(self, url, params):
        while url and self.more():
            response, _ = self.read(url, params)
            url, params = response.links.get("next", {}).get("url"), None

    def newer(self, url, params, newest):
        while self.more():
            _, page = self.read(url, {**params, "min_id": newest})
            if not page:
                break
            newest = max(page, key=id_order)["id"]


def seconds_until(reset):
    when = parse_datetime(reset or "")
    if when is None:
        return 60.0
    return max(1.0, (when - datetime.now(UTC)).total_seconds())


def id_order(status):
    """Mastodon ids are numbers in strings: compare by length, then text."""
    return (len(status["id"]), status["id"])


def normalize(status):
    shown = status.get("reblog") or status
    account = shown.get("account") or {}
    content_html, content_text = sanitized(shown.get("content"))
    return NormalizedPost(
        remote_id=str(status["id"]),
        url=web_url(shown.get("url")) or web_url(shown.get("uri")),
        author_name=account.get("display_name") or account.get("acct", ""),
        author_url=web_url(account.get("url")),
        content_html=content_html,
        content_text=content_text,
        published_at=parse_time(status.get("created_at")),
        media=web_urls(item.get("url") for item in shown.get("media_attachments", [])),
        counts={
            "replies": shown.get("replies_count", 0),
            "reblogs": shown.get("reblogs_count", 0),
            "favourites": shown.get("favourites_count", 0),
        },
    )


# --- acting in a user's name -----------------------------------------------------------------

ACTION_PATHS = {"like": "/api/v1/statuses/{id}/favourite", "boost": "/api/v1/statuses/{id}/reblog"}
# What a status says of the account that reads it, once it has liked or boosted it.
DONE_FLAGS = {"like": "favourited", "boost": "reblogged"}


def act(client, base_url, token, *, action, status_id, text="", idempotency_key=""):
    """Like, boost or reply; return the id of the status the instance answers with.

    Liking or boosting twice is a no-op on Mastodon; a reply carries an Idempotency-Key,
    so a retried reply is not posted twice.
    """
    headers = {"Authorization": f"Bearer {token}"}
    base = base_url.rstrip("/")
    if action == "reply":
        url, body = f"{base}/api/v1/statuses", {"status": text, "in_reply_to_id": status_id}
        headers["Idempotency-Key"] = idempotency_key
    else:
        url, body = base + ACTION_PATHS[action].format(id=status_id), {}
    answer = json_of(send_json(client, "POST", url, body, headers))
    return str(answer.get("id", "")) if isinstance(answer, dict) else ""


def done_before(client, base_url, token, *, action, status_id):
    """The status's id if the account has already liked it ("" for a boost: the boost's own
    id is not on the status), None if not; a reply cannot be told apart (None), and needs
    not be: its Idempotency-Key keeps it from being posted twice."""
    if action not in DONE_FLAGS:
        return None
    url = f"{base_url.rstrip('/')}/api/v1/statuses/{status_id}"
    status = read_json(client, url, {"Authorization": f"Bearer {token}"})
    if not isinstance(status, dict) or status.get(DONE_FLAGS[action]) is not True:
        return None
    return str(status.get("id", "")) if action == "like" else ""
