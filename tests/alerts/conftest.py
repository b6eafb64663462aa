"""Fixtures of the alerts tests: the outside world (target pages, webhook receiver, SMTP
server) as real processes on loopback, and rules and channels made through the API."""

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from jobs.devredis import free_port

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Not 127.0.0.1: the SSRF tests open this one address only and check 127.0.0.1 stays shut.
OUTSIDE_HOST = "127.0.0.2"


def start_process(module, *args):
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=BASE_DIR, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
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

    def control(self, what, body=None):
        self.client.post(f"/_fake/{what}", json=body or {}).raise_for_status()

    def set_page(self, name, body, *, status=200, content_type="text/html; charset=utf-8", fail_times=0, fail_status=503):
        self.control("page", {"name": name, "body": body, "status": status, "content_type": content_type,
                              "fail_times": fail_times, "fail_status": fail_status})
        return f"{self.url}/page/{name}"

    def fail_hook(self, name, times):
        self.control("hook", {"name": name, "fail_times": times})

    def requests(self, path_prefix=""):
        return [request for request in self.client.get("/_fake/requests").json() if request["path"].startswith(path_prefix)]

    def hook_calls(self, name):
        return [request for request in self.requests(f"/hook/{name}") if request["method"] == "POST"]


@pytest.fixture(scope="module")
def outside():
    server = Outside()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_outside(outside):
    outside.control("reset")


class Smtp:
    def __init__(self, tmp_dir):
        self.port = free_port()
        self.out = Path(tmp_dir) / "mail.jsonl"
        self.out.touch()
        self.process = start_process("tests.fakes.smtp", "--port", str(self.port), "--out", str(self.out))

    def messages(self):
        return [json.loads(line) for line in self.out.read_text().splitlines()]


@pytest.fixture
def smtp(tmp_path):
    server = Smtp(tmp_path)
    yield server
    stop_process(server.process)


@pytest.fixture
def fast_alert_policies(settings):
    """Retry delays of a second or two, and no per-domain limit, unless a test sets one."""
    policies = json.loads(json.dumps(settings.QUEUE_POLICIES))
    policies["rules-run"].update(retry_delays=[1, 2], rate_limit="1000/1")
    policies["alerts-dispatch"].update(retry_delays=[1, 1, 1, 1, 1])
    settings.QUEUE_POLICIES = policies
    return policies


@pytest.fixture
def rule_for(api, fast_alert_policies):
    def create(url, expression="#price", extractor="css", **fields):
        body = {"name": fields.pop("name", "watched"), "url": url, "extractor": extractor, "expression": expression, **fields}
        response = api.post("/api/v1/rules/", body)
        assert response.status_code == 201, response.text
        return response.json()

    return create


@pytest.fixture
def channel_for(api, outside):
    def create(name="hook", kind="apprise", url=None):
        url = url or f"json://{OUTSIDE_HOST}:{outside.port}/hook/{name}"
        response = api.post("/api/v1/channels/", {"name": name, "kind": kind, "url": url})
        assert response.status_code == 201, response.text
        return response.json()

    return create


@pytest.fixture
def run_rule(api, run_worker_burst):
    """Ask for a test run through the API, run the workers until the queues are empty."""

    def run(rule_id, **body):
        response = api.post(f"/api/v1/rules/{rule_id}/run", body)
        assert response.status_code == 202, response.text
        run_worker_burst("rules-run", "alerts-dispatch")
        return api.get(f"/api/v1/runs/{response.json()['run']}").json()

    return run


def page_with_price(price, extra=""):
    return f"<html><body><h1>Widget</h1><div id='price'>{price}</div>{extra}<p>{time.time()}</p></body></html>"
