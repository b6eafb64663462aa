"""Lemmy: the newest posts of a community (`/api/v3/post/list?sort=New`).

Pages are read newest first until a post at or below the cursor's id appears, or the
page bound is reached.
"""

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


def fetch(client, source, cursor, *, max_pages, page_size):
    url = f"{source.url.rstrip('/')}/api/v3/post/list"
    newest = int(cursor.get("newest_id") or 0)
    views, pages = [], 0
    while pages < max_pages:
        params = {"community_name": source.target, "sort": "New", "limit": min(page_size, 50), "page": pages + 1}
        page = posts_of(outbound.get(client, url, params=params))
        pages += 1
        fresh = [view for view in page if view["post"]["id"] > newest]
        views += fresh
        if len(fresh) < len(page) or not page:
            break
    posts = [normalize(view) for view in sorted(views, key=lambda view: view["post"]["id"], reverse=True)]
    newest_id = int(posts[0].remote_id) if posts else newest
    return FetchResult(posts=posts, cursor={"newest_id": newest_id} if newest_id else {}, pages=pages)


def posts_of(response):
    body = json_of(response)
    if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
        raise SourceError(f"{response.url} did not answer with a list of posts")
    return body["posts"]


def normalize(view):
    post, creator, counts = view["post"], view.get("creator") or {}, view.get("counts") or {}
    body = post.get("body") or ""
    content_html, content_text = sanitized("".join(f"<p>{part}</p>" for part in body.split("\n\n") if part))
    link = web_url(post.get("url"))
    return NormalizedPost(
        remote_id=str(post["id"]),
        url=web_url(post.get("ap_id")) or link,
        author_name=creator.get("display_name") or creator.get("name", ""),
        author_url=web_url(creator.get("actor_id")),
        title=post.get("name", "")[:500],
        content_html=content_html,
        content_text=content_text,
        published_at=parse_time(post.get("published")),
        media=[item for item in web_urls((post.get("thumbnail_url"), link)) if item.rsplit(".", 1)[-1] in IMAGE_TYPES],
        counts={key: counts.get(key, 0) for key in ("score", "comments", "upvotes", "downvotes")},
    )


IMAGE_TYPES = {"jpg", "jpeg", "png", "gif", "webp"}


# --- acting in a user's name -----------------------------------------------------------------


def act(client, base_url, token, *, action, status_id, text="", idempotency_key=""):
    """Upvote a post or comment on it; return the id of what the instance made."""
    base, headers = base_url.rstrip("/"), {"Authorization": f"Bearer {token}"}
    if action == "like":
        url, body = f"{base}/api/v3/post/like", {"post_id": int(status_id), "score": 1}
    else:
        url, body = f"{base}/api/v3/comment", {"post_id": int(status_id), "content": text}
    answer = json_of(send_json(client, "POST", url, body, headers))
    made = answer.get("comment_view") or answer.get("post_view") or {}
    return str((made.get("comment") or made.get("post") or {}).get("id", ""))


def done_before(client, base_url, token, *, action, status_id):
    """The post's id if the account's vote on it is already the upvote, None if not (or for
    a comment, which cannot be told apart)."""
    if action != "like":
        return None
    url = f"{base_url.rstrip('/')}/api/v3/post?id={int(status_id)}"
    answer = read_json(client, url, {"Authorization": f"Bearer {token}"})
    view = (answer.get("post_view") if isinstance(answer, dict) else None) or {}
    return str((view.get("post") or {}).get("id", status_id)) if view.get("my_vote") == 1 else None
