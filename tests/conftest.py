"""Fixtures: the test Redis (tests/redis_server.py), real workers, real HTTP, a fake `eas`.

Only the outside world is stood in for: EAS by tests/fakes/eas, a real executable.
Everything of ours runs for real: Redis, the database, worker and scheduler processes.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.authtoken.models import Token

from jobs import pausing
from jobs.connection import get_redis
from jobs.worker import ConveyorQueue, ConveyorWorker
from tests import redis_server

BASE_DIR = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items):
    """Tests marked `longest` first: with several test processes (make test), the other
    processes run the rest meanwhile, instead of it running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    """Users made by the tests get an MD5 hash: PBKDF2's 1,000,000 rounds cost about 0.3 s
    per user, which every test with an API client paid (minutes of CI). Nothing here tests
    the production hasher; no test logs in with a password."""
    hashers = django_settings.PASSWORD_HASHERS
    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    django_settings.PASSWORD_HASHERS = hashers


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts on an empty test Redis (never a user's: see tests/redis_server.py)."""
    if redis_server.TEST_REDIS_PROCESS.poll() is not None:
        redis_server.start_redis()
    get_redis().flushdb()
    pausing.mirror_to_redis([])
    yield


def wait_for(predicate, timeout=30.0, interval=0.1, message="condition"):
    """Poll until predicate() is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def scheduler_pid(queue_name):
    """The pid of the RQ scheduler process (a worker's child) holding the queue's lock, if any."""
    holder = get_redis().get(f"rq:scheduler-lock:{queue_name}")
    pid = holder and get_redis().hget(f"rq:scheduler:{holder.decode()}", "pid")
    return int(pid) if pid else None


@pytest.fixture
def make_user(transactional_db, django_user_model):
    def make(username, **extra):
        return django_user_model.objects.create_user(username=username, password="unused-pass-123", **extra)

    return make


class Api:
    """Real HTTP against the live server, authenticated with a DRF token."""

    def __init__(self, base_url, user):
        token = Token.objects.create(user=user)
        self.user = user
        self.client = httpx.Client(base_url=base_url, headers={"Authorization": f"Token {token.key}"}, timeout=10)

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.client.post(path, json=json, **kwargs)

    def create_project(self, name="app"):
        # Its source: the directory tests/redis_server.py made under EAS_PROJECTS_ROOT.
        response = self.post("/api/v1/projects/", {"name": name, "directory": "app"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def initiate(self, project, platform="ios", token="expo-secret-token-0123456789"):
        body = {"project": project, "platform": platform, "credentials": {"expo_token": token}}
        return self.post("/api/v1/publishing/initiate", body)


@pytest.fixture
def api(live_server, make_user):
    client = Api(live_server.url, make_user("alice"))
    yield client
    client.client.close()


@pytest.fixture
def other_api(live_server, make_user):
    client = Api(live_server.url, make_user("bob"))
    yield client
    client.client.close()


@pytest.fixture
def staff_api(live_server, make_user):
    client = Api(live_server.url, make_user("operator", is_staff=True))
    yield client
    client.client.close()


@pytest.fixture
def staff(make_user):
    """A logged-in superuser's admin client."""
    from django.test import Client

    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def fake_eas(tmp_path, settings, monkeypatch):
    from tests.fakes.eas_fake import FakeEas

    fake = FakeEas(tmp_path / "eas")
    settings.EAS_CLI = fake.executable
    settings.EAS_POLL_INTERVAL = 0.2
    monkeypatch.setenv("FAKE_EAS_DIR", str(fake.directory))
    return fake


@pytest.fixture
def run_worker_burst():
    """Run a ConveyorWorker in this process until its queues are empty."""

    def run(*queue_names):
        names = queue_names or tuple(django_settings.QUEUE_POLICIES)
        queues = [ConveyorQueue(name, connection=get_redis()) for name in names]
        worker = ConveyorWorker(queues, connection=get_redis())
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        connection.close()  # the worker closed it between jobs; start the test side afresh

    return run


def database_url():
    """The test database as a DATABASE_URL, for worker processes."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Processes:
    """Real `manage.py` processes (workers, scheduler) sharing the test database and Redis."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.running = []

    def environment(self, extra):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_server.TEST_REDIS_URL,
            "EAS_CLI": str(django_settings.EAS_CLI),
            "EAS_POLL_INTERVAL": str(django_settings.EAS_POLL_INTERVAL),
            "WORKER_HEARTBEAT": "0.5",
            "WORKER_ALIVE_TTL": "2",
            "RECONCILE_INTERVAL": "1",
            "RECONCILE_GRACE": "0.5",
            "SCHEDULER_INTERVAL": "0.2",
            "CONVEYOR_QUEUE_PUBLISHING_BUILDS_JSON": json.dumps(
                {
                    key: django_settings.QUEUE_POLICIES["publishing-builds"][key]
                    for key in ("retry_delays", "rate_limit")
                }
            ),
        }
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def start(self, *args, env=None, name="process"):
        log_path = self.tmp_path / f"{name}-{len(self.running)}.log"
        log_file = open(log_path, "w")
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.environment(env or {}),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        process.log_path = log_path
        self.running.append(process)
        return process

    def worker(self, *queues, processes=1, env=None):
        """The stock commands: `rqworker` for one process, else `rqworker-pool`."""
        if processes == 1:
            return self.start("rqworker", *queues, env=env, name="worker")
        return self.start("rqworker-pool", "--num-workers", str(processes), *queues, env=env, name="worker")

    def scheduler(self, env=None):
        return self.start("rqscheduler", env=env, name="scheduler")

    def logs(self):
        return "\n".join(process.log_path.read_text() for process in self.running)

    def stop_all(self):
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path, transactional_db):
    running = Processes(tmp_path)
    yield running
    running.stop_all()


@pytest.fixture
def fast_publishing_policy(settings):
    """Short retry delays so the suite waits seconds, not minutes."""
    policies = json.loads(json.dumps(settings.QUEUE_POLICIES))
    policies["publishing-builds"]["retry_delays"] = [1, 2, 3]
    policies["publishing-builds"]["rate_limit"] = "100/1"
    settings.QUEUE_POLICIES = policies
    return policies["publishing-builds"]


@pytest.fixture(scope="module")
def hostile_dns():
    """A nameserver on loopback for an attacker's own domain (tests/fakes/dns.py): names
    that resolve to loopback, private and metadata addresses."""
    from tests.fakes.dns_fake import FakeDns

    server = FakeDns()
    yield server
    server.stop()


KEYSTORE_ERROR = "Gradle could not find the keystore"


@pytest.fixture
def failed_publishing(api, fake_eas, fast_publishing_policy, run_worker_burst):
    """A publishing whose build errored: a failed row and its failed job."""
    from publishing.models import Publishing

    fake_eas.configure(polls_until_done=0, final_status="ERRORED", error_message=KEYSTORE_ERROR)
    response = api.initiate(api.create_project())
    assert response.status_code == 202, response.text
    publishing_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while Publishing.objects.get(pk=publishing_id).status != "failed" and time.monotonic() < deadline:
        run_worker_burst("publishing-builds")
        time.sleep(0.2)
    publishing = Publishing.objects.get(pk=publishing_id)
    assert publishing.status == "failed", publishing.last_error
    return publishing
