"""The outside world of the alerts tests, as one real server process on loopback.

- GET /page/<name>: a watched page whose body, status and content type the test sets
  (POST /_fake/page); GET /redirect?to=URL answers 302 to that URL. A POST to either
  answers the same (a notification endpoint that redirects or answers too much).
- POST /hook/<name>: a webhook receiver (apprise's json:// and our signed webhooks) that
  records what it gets and can be told to fail its next N requests (POST /_fake/hook).
- GET /_fake/requests: every request seen, with its time; POST /_fake/reset.

Run: python -m tests.fakes.outside --host 127.0.0.2 --port N (prints "listening" when ready).
"""

import argparse
import json
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import FakeHandler


class World:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.pages = {}
            self.hook_failures = {}
            self.requests = []


world = World()


class Handler(FakeHandler):
    def record(self, body=b""):
        entry = {
            "method": self.command,
            "path": self.path,
            "at": time.time(),
            "headers": dict(self.headers),
            "body": body.decode(errors="replace"),
        }
        with world.lock:
            world.requests.append(entry)

    def read_body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/_fake/requests":
            with world.lock:
                return self.send_raw(200, json.dumps(world.requests).encode(), "application/json")
        self.record()
        self.serve(parts)

    def serve(self, parts):
        if parts.path == "/redirect":
            return self.send_raw(302, b"", "text/plain", {"Location": parse_qs(parts.query)["to"][0]})
        if parts.path.startswith("/page/"):
            return self.page(parts.path.removeprefix("/page/"))
        self.send_raw(404, b"not found", "text/plain")

    def page(self, name):
        with world.lock:
            page = dict(world.pages.get(name) or {"status": 404, "body": "no such page", "content_type": "text/plain"})
            if page.get("fail_times"):
                world.pages[name]["fail_times"] -= 1
                page.update(status=page["fail_status"], body="failing on purpose")
        time.sleep(page.get("delay") or 0)
        content_type = page.get("content_type") or "text/html; charset=utf-8"
        self.send_raw(page["status"], page["body"].encode(), content_type, page.get("headers"))

    def do_POST(self):
        body = self.read_body()
        path = urlsplit(self.path).path
        if path.startswith("/_fake/"):
            return self.control(path.removeprefix("/_fake/"), json.loads(body or b"{}"))
        self.record(body)
        if path.startswith("/hook/"):
            return self.hook(path.removeprefix("/hook/"))
        self.serve(urlsplit(self.path))  # a JSON endpoint that redirects, or answers a set page

    def hook(self, name):
        with world.lock:
            failures = world.hook_failures.get(name, 0)
            if failures:
                world.hook_failures[name] = failures - 1
        if failures:
            return self.send_raw(503, b"try later", "text/plain")
        self.send_raw(200, b'{"ok": true}', "application/json")

    def control(self, what, body):
        if what == "reset":
            world.reset()
        elif what == "page":
            with world.lock:
                world.pages[body.pop("name")] = {"status": 200, **body}
        elif what == "hook":
            with world.lock:
                world.hook_failures[body["name"]] = body.get("fail_times", 0)
        else:
            return self.send_raw(404, b"unknown control", "text/plain")
        self.send_raw(204, b"", "text/plain")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
