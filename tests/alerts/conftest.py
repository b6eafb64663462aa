"""Fixtures of the alerts tests: the outside world (target pages, webhook receiver, SMTP
server) as real processes on loopback, and rules and channels made through the API."""

import json
import time
from pathlib import Path

import pytest

from core.devredis import free_port
from tests.fakes.outside_fake import OUTSIDE_HOST, Outside, start_process, stop_process


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
        body = {
            "name": fields.pop("name", "watched"),
            "url": url,
            "extractor": extractor,
            "expression": expression,
            **fields,
        }
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
