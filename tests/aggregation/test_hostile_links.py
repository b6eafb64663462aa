"""A remote's links are as untrusted as its posts: only http(s) URLs are stored as a post's
URL, its author's URL or its media."""

import pytest

from aggregation.models import Fetch, Post
from aggregation.sources import web_url

HOSTILE = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    "  javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("value", [*HOSTILE, "https://", "http://[::1", "mailto:a@example.com", None, 42, ""])
def test_only_absolute_http_urls_are_kept(value):
    assert web_url(value) == ""


def test_http_urls_are_kept_as_they_are():
    assert web_url("https://mastodon.example/@alice/1") == "https://mastodon.example/@alice/1"
    assert web_url(" HTTP://Example.com/a ") == "HTTP://Example.com/a"
    assert web_url("https://example.com/" + "a" * 1000) == ""  # longer than the column


def fetch_now(api, source_id, run_worker_burst):
    response = api.post(f"/api/v1/sources/{source_id}/fetch")
    assert response.status_code == 202, response.text
    run_worker_burst("content-aggregation")
    return Fetch.objects.get(pk=response.json()["id"])


def hostile_posts():
    return [
        {"content": f"<p>post {n}</p>", "url": link, "author_url": link, "media": [link, "https://cdn.example/a.png"]}
        for n, link in enumerate(HOSTILE)
    ]


def assert_only_web_links(posts):
    for post in posts:
        for link in (post.url, post.author_url, *post.media):
            assert link == "" or link.lower().startswith(("http://", "https://")), link


@pytest.mark.parametrize(
    "platform, target, feed, path",
    [
        ("mastodon", "public", "public", ""),
        ("lemmy", "technology", "technology", ""),
        ("peertube", "instance", "instance", ""),
        ("feed", "", "hostile", "/feeds/hostile.rss"),
        ("feed", "", "hostile", "/feeds/hostile.atom"),
    ],
)
def test_hostile_links_in_a_remote_answer_are_not_stored(
    api, remote, source_for, run_worker_burst, platform, target, feed, path
):
    remote_platform = path.rsplit(".", 1)[-1] if platform == "feed" else platform
    remote.add_posts(remote_platform, feed, hostile_posts())
    source_id = source_for(platform, target, path)

    fetch = fetch_now(api, source_id, run_worker_burst)

    assert fetch.status == "succeeded", fetch.last_error
    stored = list(Post.objects.filter(source_id=source_id))
    assert len(stored) == len(HOSTILE)
    assert_only_web_links(stored)
    listed = api.get("/api/v1/posts/", params={"source": source_id}).json()["results"]
    assert not [item for item in listed if "script" in f"{item['url']} {item['author_url']}".lower()]


def test_a_hostile_mastodon_status_falls_back_to_its_uri(api, remote, source_for, run_worker_burst):
    remote.add_posts("mastodon", "public", [{"content": "<p>hi</p>", "url": "javascript:alert(1)"}])
    source_id = source_for("mastodon", "public")
    fetch_now(api, source_id, run_worker_burst)
    post = Post.objects.get(source_id=source_id)
    assert post.url.startswith(remote.url + "/users/") and post.media == []
