"""A stand-in for the remote platforms the aggregation app reads, for the tests.

Run as `python -m tests.fakes.platforms --port PORT`. It answers like Mastodon
(timelines, Link pagination, max_id/since_id/min_id, rate-limit headers), Lemmy
(/api/v3/post/list), PeerTube (/api/v1/videos, channel videos) and RSS/Atom feeds
(ETag, Last-Modified, 304), from posts a test adds through a control API under /_fake/.
"""

import argparse
import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

from tests.fakes.http import FakeHandler

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Store:
    """Posts per (platform, feed), misbehaviours to play, and the requests seen."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.posts, self.misbehaviours, self.requests, self.next_id = {}, [], [], 1000
        self.rate_limit_remaining = 300
        self.replies = {}
        self.acted = set()  # (token, what, id): a like, boost or vote an account has made

    def add(self, platform, feed, posts):
        with self.lock:
            stored = self.posts.setdefault((platform, feed), [])
            for post in posts:
                self.next_id += 1
                stored.append(complete(post, self.next_id))

    def newest_first(self, platform, feed):
        with self.lock:
            return list(reversed(self.posts.get((platform, feed), [])))

    def reply_id(self, idempotency_key=None):
        """A new status id; the same Idempotency-Key always gets the same one."""
        with self.lock:
            if idempotency_key and idempotency_key in self.replies:
                return self.replies[idempotency_key]
            self.next_id += 1
            if idempotency_key:
                self.replies[idempotency_key] = str(self.next_id)
            return str(self.next_id)

    def act(self, token, what, post_id):
        with self.lock:
            self.acted.add((token, what, str(post_id)))

    def has_acted(self, token, what, post_id):
        with self.lock:
            return (token, what, str(post_id)) in self.acted

    def find(self, platform, post_id):
        """The stored post of `platform` with this id (its number for Lemmy), or None."""
        with self.lock:
            for (stored_platform, feed), posts in self.posts.items():
                for post in posts if stored_platform == platform else ():
                    if str(post_id) in (post["id"], str(post["number"])):
                        return feed, post
        return None

    def take_misbehaviour(self, path):
        with self.lock:
            for rule in self.misbehaviours:
                if path.startswith(rule["path_prefix"]) and rule["times"] > 0:
                    rule["times"] -= 1
                    return rule
        return None


def complete(post, number):
    published = post.get("published") or (EPOCH + timedelta(minutes=number)).isoformat().replace("+00:00", "Z")
    return {
        "id": str(post.get("id") or number),
        "number": number,
        "content": post.get("content", f"<p>Post {number}</p>"),
        "title": post.get("title", f"Post {number}"),
        "author": post.get("author", "alice"),
        "published": published,
        "media": post.get("media", []),
        "counts": post.get("counts", {}),
        # Links the remote sends as they are, hostile ones included; by default its own.
        "url": post.get("url"),
        "author_url": post.get("author_url"),
    }


STORE = Store()


# --- Mastodon -------------------------------------------------------------------------------


def mastodon_feed(path):
    if path == "/api/v1/timelines/public":
        return "public"
    if path.startswith("/api/v1/timelines/tag/"):
        return "tag:" + path.rsplit("/", 1)[1]
    if path.startswith("/api/v1/accounts/") and path.endswith("/statuses"):
        return "account:" + path.split("/")[4]
    return None


def mastodon_page(posts, query):
    """Mastodon's paging: newest first; min_id gives the page just above it."""
    limit = min(int(query.get("limit", 20)), 40)
    number = lambda post: int(post["id"])  # noqa: E731
    if "max_id" in query:
        posts = [post for post in posts if number(post) < int(query["max_id"])]
    if "since_id" in query:
        posts = [post for post in posts if number(post) > int(query["since_id"])]
    if "min_id" in query:
        newer = [post for post in posts if number(post) > int(query["min_id"])]
        return list(reversed(list(reversed(newer))[:limit]))
    return posts[:limit]


def mastodon_status(base, post):
    return {
        "id": post["id"],
        "created_at": post["published"],
        "uri": f"{base}/users/{post['author']}/statuses/{post['id']}",
        "url": post["url"] or f"{base}/@{post['author']}/{post['id']}",
        "content": post["content"],
        "visibility": "public",
        "replies_count": post["counts"].get("replies", 0),
        "reblogs_count": post["counts"].get("reblogs", 0),
        "favourites_count": post["counts"].get("favourites", 0),
        "reblog": None,
        "account": {
            "id": "1",
            "acct": post["author"],
            "display_name": post["author"].title(),
            "url": post["author_url"] or f"{base}/@{post['author']}",
        },
        "media_attachments": [
            {"id": str(index), "type": "image", "url": url} for index, url in enumerate(post["media"])
        ],
    }


def mastodon_links(base, path, page, query):
    if not page:
        return None
    limit = query.get("limit", "20")
    next_url = f"{base}{path}?{urlencode({'limit': limit, 'max_id': page[-1]['id']})}"
    prev_url = f"{base}{path}?{urlencode({'limit': limit, 'min_id': page[0]['id']})}"
    return f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'


# --- Lemmy and PeerTube ---------------------------------------------------------------------


def lemmy_posts(base, community, query):
    limit, page = min(int(query.get("limit", 10)), 50), int(query.get("page", 1))
    posts = STORE.newest_first("lemmy", community)[(page - 1) * limit : page * limit]
    return {"posts": [lemmy_view(base, community, post) for post in posts]}


def lemmy_view(base, community, post):
    return {
        "post": {
            "id": post["number"],
            "name": post["title"],
            "body": post["content"],
            "url": None,
            "ap_id": post["url"] or f"{base}/post/{post['number']}",
            "published": post["published"],
            "thumbnail_url": None,
        },
        "creator": {
            "name": post["author"],
            "display_name": post["author"].title(),
            "actor_id": post["author_url"] or f"{base}/u/{post['author']}",
        },
        "community": {"name": community, "actor_id": f"{base}/c/{community}"},
        "counts": {"score": 1, "comments": 0, "upvotes": 1, "downvotes": 0, **post["counts"]},
    }


def peertube_videos(base, feed, query):
    start, count = int(query.get("start", 0)), min(int(query.get("count", 15)), 100)
    videos = STORE.newest_first("peertube", feed)
    return {"total": len(videos), "data": [peertube_video(base, video) for video in videos[start : start + count]]}


def peertube_video(base, post):
    uuid = f"00000000-0000-4000-8000-{post['number']:012d}"
    return {
        "id": post["number"],
        "uuid": uuid,
        "shortUUID": str(post["number"]),
        "name": post["title"],
        "description": post["content"],
        "url": post["url"] or f"{base}/w/{post['number']}",
        "publishedAt": post["published"],
        "thumbnailPath": f"/lazy-static/thumbnails/{uuid}.jpg",
        "views": 10,
        "likes": 1,
        "dislikes": 0,
        "account": {
            "name": post["author"],
            "displayName": post["author"].title(),
            "url": post["author_url"] or f"{base}/a/{post['author']}",
        },
        "channel": {"name": "main", "displayName": "Main"},
    }


# --- Feeds ----------------------------------------------------------------------------------


def feed_link(post, base, kind):
    """The post's link, escaped for XML text and attributes."""
    return quoteattr(post["url"] or f"{base}/{kind}/{post['id']}")[1:-1]


def rss(base, name, posts):
    items = "".join(
        f"<item><guid>{base}/items/{post['id']}</guid><link>{feed_link(post, base, 'items')}</link>"
        f"<title>{escape(post['title'])}</title><description>{escape(post['content'])}</description>"
        f"<author>{escape(post['author'])}</author>"
        f"<pubDate>{format_datetime(datetime.fromisoformat(post['published'].replace('Z', '+00:00')), usegmt=True)}</pubDate></item>"
        for post in posts
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title><link>{base}</link><description>{name}</description>{items}</channel></rss>'


def atom(base, name, posts):
    entries = "".join(
        f'<entry><id>{base}/entries/{post["id"]}</id><link href="{feed_link(post, base, "entries")}"/>'
        f'<title>{escape(post["title"])}</title><content type="html">{escape(post["content"])}</content>'
        f"<author><name>{escape(post['author'])}</name></author><updated>{post['published']}</updated>"
        f"<published>{post['published']}</published></entry>"
        for post in posts
    )
    updated = posts[0]["published"] if posts else EPOCH.isoformat()
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{name}</title>'
        f"<id>{base}/feeds/{name}</id><updated>{updated}</updated>{entries}</feed>"
    )


# --- HTTP -----------------------------------------------------------------------------------


class Handler(FakeHandler):
    @property
    def base(self):
        return f"http://{self.headers.get('Host')}"

    def do_GET(self):
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/_fake/requests":
            return self.send_json(200, STORE.requests)
        STORE.requests.append(
            {"method": "GET", "path": url.path, "query": query, "headers": dict(self.headers), "time": time.time()}
        )
        if self.misbehaved(url.path):
            return
        self.route(url.path, query)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if not self.path.startswith("/_fake/"):
            return self.mastodon_action(body)
        if self.path == "/_fake/posts":
            STORE.add(body["platform"], body["feed"], body["posts"])
        elif self.path == "/_fake/misbehave":
            STORE.misbehaviours.append({"times": 1, **body})
        elif self.path == "/_fake/reset":
            STORE.reset()
        elif self.path == "/_fake/rate-limit":
            STORE.rate_limit_remaining = body["remaining"]
        else:
            return self.send_json(404, {"error": "Record not found"})
        self.send_json(200, {"ok": True})

    def do_PUT(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        path = urlsplit(self.path).path
        STORE.requests.append(
            {"method": "PUT", "path": path, "query": body, "headers": dict(self.headers), "time": time.time()}
        )
        if self.misbehaved(path):
            return
        if path.startswith("/api/v1/videos/") and path.endswith("/rate"):
            if body.get("rating") == "like":
                STORE.act(self.token, "rating", path.split("/")[4])
            return self.send_raw(204, b"", None, {})
        self.send_json(404, {"error": "Record not found"})

    def mastodon_action(self, body):
        """Favourite, reblog (idempotent) or post a reply (deduplicated by Idempotency-Key)."""
        path = urlsplit(self.path).path
        STORE.requests.append(
            {"method": "POST", "path": path, "query": body, "headers": dict(self.headers), "time": time.time()}
        )
        if self.misbehaved(path):
            return
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            return self.send_json(401, {"error": "The access token is invalid"})
        parts = path.strip("/").split("/")
        if path == "/api/v3/post/like":
            if body.get("score") == 1:
                STORE.act(self.token, "my_vote", body.get("post_id"))
            return self.send_json(
                200, {"post_view": {"post": {"id": body.get("post_id")}, "my_vote": body.get("score")}}
            )
        if path == "/api/v3/comment":
            return self.send_json(
                200, {"comment_view": {"comment": {"id": STORE.reply_id(None), "content": body.get("content")}}}
            )
        if len(parts) == 5 and parts[:3] == ["api", "v1", "videos"] and parts[4] == "comment-threads":
            return self.send_json(200, {"comment": {"id": int(STORE.reply_id(None)), "text": body.get("text")}})
        if path == "/api/v1/statuses":
            return self.send_json(
                200,
                {
                    "id": STORE.reply_id(self.headers.get("Idempotency-Key")),
                    "content": body.get("status"),
                    "in_reply_to_id": body.get("in_reply_to_id"),
                },
            )
        if len(parts) == 5 and parts[:3] == ["api", "v1", "statuses"] and parts[4] in ("favourite", "reblog"):
            STORE.act(self.token, parts[4] + "d", parts[3])
            return self.send_json(200, {"id": parts[3], parts[4] + "d": True})
        self.send_json(404, {"error": "Record not found"})

    def misbehaved(self, path):
        rule = STORE.take_misbehaviour(path)
        if rule is None:
            return False
        time.sleep(rule.get("delay") or 0)
        headers = {"Retry-After": str(rule["retry_after"])} if rule.get("retry_after") is not None else {}
        if rule.get("status") is None and rule.get("body") is None:
            return False
        self.send_raw(
            rule.get("status") or 200,
            (rule.get("body") or '{"error": "Too many requests"}').encode(),
            "application/json",
            headers,
        )
        return True

    @property
    def token(self):
        return self.headers.get("Authorization", "")

    def route(self, path, query):
        feed = mastodon_feed(path)
        if feed:
            return self.mastodon(path, feed, query)
        acted = self.what_was_done(path, query)
        if acted is not None:
            return self.send_json(*acted)
        if path == "/api/v3/post/list":
            return self.send_json(200, lemmy_posts(self.base, query.get("community_name", ""), query))
        if path == "/api/v1/videos":
            return self.send_json(200, peertube_videos(self.base, "instance", query))
        if path.startswith("/api/v1/video-channels/") and path.endswith("/videos"):
            return self.send_json(200, peertube_videos(self.base, "channel:" + path.split("/")[4], query))
        if path.startswith("/feeds/"):
            return self.feed(path)
        self.send_json(404, {"error": "Record not found"})

    def what_was_done(self, path, query):
        """(status, body) of the GETs that say whether this account liked, boosted or voted
        for a post, as each platform answers them; None for any other path."""
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[:3] == ["api", "v1", "statuses"]:
            found = STORE.find("mastodon", parts[3])
            if found is None:
                return 404, {"error": "Record not found"}
            flags = {flag: STORE.has_acted(self.token, flag, parts[3]) for flag in ("favourited", "reblogged")}
            return 200, {**mastodon_status(self.base, found[1]), **flags}
        if path == "/api/v3/post":
            found = STORE.find("lemmy", query.get("id", ""))
            if found is None:
                return 404, {"error": "couldnt_find_post"}
            vote = 1 if STORE.has_acted(self.token, "my_vote", query["id"]) else None
            return 200, {"post_view": {**lemmy_view(self.base, found[0], found[1]), "my_vote": vote}}
        if len(parts) == 7 and parts[:5] == ["api", "v1", "users", "me", "videos"] and parts[6] == "rating":
            rating = "like" if STORE.has_acted(self.token, "rating", parts[5]) else "none"
            return 200, {"id": parts[5], "rating": rating}
        return None

    def mastodon(self, path, feed, query):
        page = mastodon_page(STORE.newest_first("mastodon", feed), query)
        STORE.rate_limit_remaining = max(0, STORE.rate_limit_remaining - 1)
        reset = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": str(STORE.rate_limit_remaining),
            "X-RateLimit-Reset": reset,
        }
        link = mastodon_links(self.base, path, page, query)
        if link:
            headers["Link"] = link
        self.send_json(200, [mastodon_status(self.base, post) for post in page], headers)

    def feed(self, path):
        name, _, kind = path[len("/feeds/") :].rpartition(".")
        posts = STORE.newest_first(kind, name)
        document = (rss if kind == "rss" else atom)(self.base, name, posts).encode()
        etag = '"' + hashlib.sha256(document).hexdigest()[:16] + '"'
        modified = format_datetime(
            datetime.fromisoformat(posts[0]["published"].replace("Z", "+00:00")) if posts else EPOCH, usegmt=True
        )
        if self.headers.get("If-None-Match") == etag or (
            not self.headers.get("If-None-Match") and self.headers.get("If-Modified-Since") == modified
        ):
            return self.send_raw(304, b"", None, {"ETag": etag, "Last-Modified": modified})
        content_type = "application/rss+xml" if kind == "rss" else "application/atom+xml"
        self.send_raw(200, document, content_type, {"ETag": etag, "Last-Modified": modified})

    def send_json(self, status, body, headers=None):
        self.send_raw(status, json.dumps(body).encode(), "application/json", headers or {})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    server = ThreadingHTTPServer(("127.0.0.1", parser.parse_args().port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
