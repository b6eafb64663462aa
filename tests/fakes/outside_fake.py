"""Drive tests/fakes/outside.py (pages to watch, a webhook receiver) from tests and benchmarks."""

import subprocess
import sys
from pathlib import Path

import httpx

from core.devredis import free_port

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Not 127.0.0.1: the SSRF tests open this one address only and check 127.0.0.1 stays shut.
OUTSIDE_HOST = "127.0.0.2"


def start_process(module, *args):
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout.readline().startswith("listening"), f"{module} did not start"
    return process


def stop_process(process):
    process.terminate()
    process.wait(5)


class Outside:
    """Drives tests/fakes/outside.py: pages to watch, and a webhook receiver."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://{OUTSIDE_HOST}:{self.port}"
        self.process = start_process("tests.fakes.outside", "--host", OUTSIDE_HOST, "--port", str(self.port))
        self.client = httpx.Client(base_url=self.url, timeout=5)

    def stop(self):
        self.client.close()
        stop_process(self.process)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def control(self, what, body=None):
        self.client.post(f"/_fake/{what}", json=body or {}).raise_for_status()

    def set_page(
        self,
        name,
        body,
        *,
        status=200,
        content_type="text/html; charset=utf-8",
        fail_times=0,
        fail_status=503,
        headers=None,
    ):
        self.control(
            "page",
            {
                "name": name,
                "body": body,
                "status": status,
                "content_type": content_type,
                "fail_times": fail_times,
                "fail_status": fail_status,
                "headers": headers or {},
            },
        )
        return f"{self.url}/page/{name}"

    def fail_hook(self, name, times):
        self.control("hook", {"name": name, "fail_times": times})

    def requests(self, path_prefix=""):
        return [
            request for request in self.client.get("/_fake/requests").json() if request["path"].startswith(path_prefix)
        ]

    def hook_calls(self, name):
        return [request for request in self.requests(f"/hook/{name}") if request["method"] == "POST"]
