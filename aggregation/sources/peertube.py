"""PeerTube: the newest videos of an instance (`/api/v1/videos`) or of a channel."""

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
    kind, _, handle = (source.target or "instance").partition(":")
    if kind == "channel" and handle:
        return f"{base}/api/v1/video-channels/{handle}/videos"
    if kind == "instance":
        return f"{base}/api/v1/videos"
    raise ValueError(f"unknown PeerTube target {source.target!r}")


def fetch(client, source, cursor, *, max_pages, page_size):
    url, newest = endpoint(source), cursor.get("newest_published", "")
    videos, pages = [], 0
    count = min(page_size, 100)
    while pages < max_pages:
        params = {"start": pages * count, "count": count, "sort": "-publishedAt"}
        page = videos_of(outbound.get(client, url, params=params))
        pages += 1
        fresh = [video for video in page if video.get("publishedAt", "") > newest]
        videos += fresh
        if len(fresh) < len(page) or len(page) < count:
            break
    posts = [normalize(source, video) for video in videos]
    newest_published = max([video["publishedAt"] for video in videos], default=newest)
    return FetchResult(
        posts=posts, cursor={"newest_published": newest_published} if newest_published else {}, pages=pages
    )


def videos_of(response):
    body = json_of(response)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SourceError(f"{response.url} did not answer with a list of videos")
    return body["data"]


def normalize(source, video):
    account = video.get("account") or {}
    content_html, content_text = sanitized(video.get("description") or "")
    return NormalizedPost(
        remote_id=str(video.get("uuid") or video["id"]),
        url=web_url(video.get("url")),
        author_name=account.get("displayName") or account.get("name", ""),
        author_url=web_url(account.get("url")),
        title=(video.get("name") or "")[:500],
        content_html=content_html,
        content_text=content_text,
        published_at=parse_time(video.get("publishedAt")),
        media=thumbnail_of(source, video),
        counts={key: video.get(key, 0) for key in ("views", "likes", "dislikes")},
    )


def thumbnail_of(source, video):
    """The thumbnail on the source's own instance: PeerTube sends a path."""
    path = video.get("thumbnailPath")
    return web_urls([source.url.rstrip("/") + path]) if isinstance(path, str) and path.startswith("/") else []


# --- acting in a user's name -----------------------------------------------------------------


def act(client, base_url, token, *, action, status_id, text="", idempotency_key=""):
    """Like a video (PUT, idempotent) or comment on it; return the comment's id."""
    base, headers = base_url.rstrip("/"), {"Authorization": f"Bearer {token}"}
    if action == "like":
        url = f"{base}/api/v1/videos/{status_id}/rate"
        response = send_json(client, "PUT", url, {"rating": "like"}, headers)
        if response.status_code == 204:
            return ""
        json_of(response)
        return ""
    url = f"{base}/api/v1/videos/{status_id}/comment-threads"
    answer = json_of(send_json(client, "POST", url, {"text": text}, headers))
    return str((answer.get("comment") or {}).get("id", ""))


def done_before(client, base_url, token, *, action, status_id):
    """ "" (a like has no id of its own) if the account's rating of the video is already a
    like, None if not (or for a comment, which cannot be told apart)."""
    if action != "like":
        return None
    url = f"{base_url.rstrip('/')}/api/v1/users/me/videos/{status_id}/rating"
    answer = read_json(client, url, {"Authorization": f"Bearer {token}"})
    return "" if isinstance(answer, dict) and answer.get("rating") == "like" else None
