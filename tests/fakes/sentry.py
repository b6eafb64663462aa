"""A stand-in for Sentry on loopback: it keeps the envelopes sentry-sdk sends it."""

import gzip
import threading
from http.server import ThreadingHTTPServer

from tests.fakes.http import FakeHandler


class FakeSentry:
    def __init__(self):
        self.envelopes = []
        received = self.envelopes

        class Handler(FakeHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append({"path": self.path, "body": body.decode(errors="replace")})
                self.send_raw(200, b"{}", "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self):
        return f"http://public-key@127.0.0.1:{self.server.server_port}/1"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
