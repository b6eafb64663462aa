"""A git server for the tests: git's own smart HTTP (`git http-backend`) over loopback.

Serves every repository under --root as http://HOST:PORT/NAME.git. Two paths misbehave:
/slow/NAME.git/… answers after 3 s, and /moved/NAME.git/… redirects to NAME.git on
127.0.0.1 (an address the guard refuses). GET /_fake/requests lists what was asked.

Run: python -m tests.fakes.git_http --root DIR --host 127.0.0.2 --port N (prints
"listening" when ready).
"""

import argparse
import json
import os
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.fakes.http import FakeHandler

SLOW_SECONDS = 3


class Handler(FakeHandler):
    root = "."
    seen = []
    lock = threading.Lock()

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def serve(self):
        parts = urlsplit(self.path)
        if parts.path == "/_fake/requests":
            with self.lock:
                return self.send_raw(200, json.dumps(self.seen).encode(), "application/json")
        with self.lock:
            self.seen.append({"method": self.command, "path": parts.path, "host": self.headers.get("Host")})
        path = parts.path
        if path.startswith("/moved/"):
            port = self.server.server_address[1]
            return self.send_raw(302, b"", None, {"Location": f"http://127.0.0.1:{port}{path[len('/moved') :]}"})
        if path.startswith("/slow/"):
            time.sleep(SLOW_SECONDS)
            path = path[len("/slow") :]
        self.backend(path, parts.query)

    def backend(self, path, query):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_ADDR": self.client_address[0],
        }
        answer = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, content = answer.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
        status = int(headers.pop("Status", "200").split()[0])
        self.send_raw(status, content, headers.pop("Content-Type", None), headers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Handler.root = args.root
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
