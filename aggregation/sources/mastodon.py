"""Mastodon timelines: public, local, a hashtag, an account's statuses.

The first fetch reads the newest page and follows `Link: rel="next"` (older) up to the
page bound. Later fetches ask for what is newer than the cursor with `min_id`, page
after page, so nothing between two fetches is skipped. X-RateLimit-Remaining 0 and 429
both mean: wait until the instance says so.
"""

from datetime import datetime, timezone

from django.utils.dateparse import parse_datetime

from jobs import outbound

from . import FetchResult, NormalizedPost, RateLimited, SourceError, json_of, parse_time, sanitized


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
    if newest:
        statuses, pages = walk_newer(client, url, params, newest, max_pages)
    else:
        statuses, pages = walk_older(client, url, params, max_pages)
    posts = [normalize(status) for status in sorted(statuses, key=id_order, reverse=True)]
    newest_id = posts[0].remote_id if posts else newest
    return FetchResult(posts=posts, cursor={"newest_id": newest_id} if newest_id else {}, pages=pages)


def walk_older(client, url, params, max_pages):
    statuses, pages = [], 0
    while url and pages < max_pages:
        response = outbound.get(client, url, params=params)
        statuses += page_of(response)
        pages += 1
        url, params = response.links.get("next", {}).get("url"), None
    return statuses, pages


def walk_newer(client, url, params, newest, max_pages):
    statuses, pages = [], 0
    while pages < max_pages:
        response = outbound.get(client, url, params={**params, "min_id": newest})
        page = page_of(response)
        pages += 1
        if not page:
            break
        statuses += page
        newest = max(page, key=id_order)["id"]
    return statuses, pages


def page_of(response):
    """The statuses of one response; raise RateLimited when the instance's budget is spent."""
    statuses = json_of(response)
    if not isinstance(statuses, list):
        raise SourceError(f"{response.url} did not answer with a list of statuses")
    if response.headers.get("x-ratelimit-remaining") == "0":
        raise RateLimited(seconds_until(response.headers.get("x-ratelimit-reset")), "rate-limit budget spent")
    return statuses


def seconds_until(reset):
    when = parse_datetime(reset or "")
    if when is None:
        return 60.0
    return max(1.0, (when - datetime.now(timezone.utc)).total_seconds())


def id_order(status):
    """Mastodon ids are numbers in strings: compare by length, then text."""
    return (len(status["id"]), status["id"])


def normalize(status):
    shown = status.get("reblog") or status
    account = shown.get("account") or {}
    content_html, content_text = sanitized(shown.get("content"))
    return NormalizedPost(
        remote_id=str(status["id"]),
        url=shown.get("url") or shown.get("uri") or "",
        author_name=account.get("display_name") or account.get("acct", ""),
        author_url=account.get("url", ""),
        content_html=content_html,
        content_text=content_text,
        published_at=parse_time(status.get("created_at")),
        media=[item["url"] for item in shown.get("media_attachments", []) if item.get("url")],
        counts={
            "replies": shown.get("replies_count", 0),
            "reblogs": shown.get("reblogs_count", 0),
            "favourites": shown.get("favourites_count", 0),
        },
    )
