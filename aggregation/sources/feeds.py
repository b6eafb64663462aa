"""RSS and Atom through feedparser, with conditional requests (ETag, Last-Modified)."""

import calendar
from datetime import UTC, datetime

import feedparser

from core import outbound

from . import FetchResult, NormalizedPost, SourceError, check_response, sanitized, web_url, web_urls


def fetch(client, source, cursor, *, max_pages, page_size):
    response = outbound.get(client, source.url, headers=conditional_headers(cursor))
    if response.status_code == 304:
        return FetchResult(posts=[], cursor=cursor, pages=1)
    check_response(response)
    parsed = feedparser.parse(response.content, response_headers=dict(response.headers))
    if parsed.bozo and not parsed.entries:
        raise SourceError(f"{source.url} is not a feed: {parsed.get('bozo_exception')}")
    posts = [normalize(entry) for entry in parsed.entries]
    new_cursor = {
        key: value
        for key, value in (("etag", response.headers.get("etag")), ("modified", response.headers.get("last-modified")))
        if value
    }
    return FetchResult(posts=[post for post in posts if post.remote_id], cursor=new_cursor, pages=1)


def conditional_headers(cursor):
    headers = {}
    if cursor.get("etag"):
        headers["If-None-Match"] = cursor["etag"]
    if cursor.get("modified"):
        headers["If-Modified-Since"] = cursor["modified"]
    return headers


def normalize(entry):
    body = entry.get("content", [{}])[0].get("value") if entry.get("content") else entry.get("summary", "")
    content_html, content_text = sanitized(body)
    return NormalizedPost(
        remote_id=(entry.get("id") or entry.get("link") or "")[:300],
        url=web_url(entry.get("link")),
        author_name=entry.get("author", ""),
        title=(entry.get("title") or "")[:500],
        content_html=content_html,
        content_text=content_text,
        published_at=time_of(entry.get("published_parsed") or entry.get("updated_parsed")),
        media=web_urls(link.get("href") for link in entry.get("enclosures", [])),
    )


def time_of(struct):
    if not struct:
        return None
    return datetime.fromtimestamp(calendar.timegm(struct), tz=UTC)
