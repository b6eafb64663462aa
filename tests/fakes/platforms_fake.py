"""Drive tests/fakes/platforms.py from a test: start it, feed it posts, read its requests."""

import subprocess
import sys
from pathlib import Path

import httpx

from core.devredis import free_port

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class FakePlatforms:
    """A real server process on loopback; `url` is its base URL."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.platforms", "--port", str(self.port)],
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout.readline().startswith("listening"), "the fake platforms server did not start"
        self.client = httpx.Client(base_url=self.url, timeout=5)
        return self

    def stop(self):
        self.client.close()
        self.process.terminate()
        self.process.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def control(self, what, body=None):
        self.client.post(f"/_fake/{what}", json=body or {}).raise_for_status()

    def add_posts(self, platform, feed, posts):
        """platform: mastodon, lemmy, peertube, rss or atom; each post a dict of optional
        content, title, author, published (ISO), media, counts."""
        self.control("posts", {"platform": platform, "feed": feed, "posts": posts})

    def misbehave(self, path_prefix, *, status=None, retry_after=None, times=1, body=None, delay=None):
        """The next `times` requests under path_prefix get this status and/or raw body."""
        self.control(
            "misbehave",
            {
                "path_prefix": path_prefix,
                "status": status,
                "retry_after": retry_after,
                "times": times,
                "body": body,
                "delay": delay,
            },
        )

    def set_rate_limit_remaining(self, remaining):
        self.control("rate-limit", {"remaining": remaining})

    def requests(self, path_prefix=""):
        seen = self.client.get("/_fake/requests").json()
        return [request for request in seen if request["path"].startswith(path_prefix)]

    def reset(self):
        self.control("reset")
