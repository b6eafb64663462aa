"""`make run` as a new user runs it: nothing set, a private Redis, SQLite, the stock
commands; then `manage.py` in that checkout finds the same keys and Redis by itself.
Its state goes to a throwaway CONVEYOR_STATE_DIR, never to the checkout's var/."""

import os
import signal
import subprocess
import sys

import httpx
import pytest

from core.devredis import free_port
from tests.conftest import BASE_DIR, wait_for

UNSET = ("REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")


@pytest.fixture
def fresh_environment(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in UNSET and not key.startswith("PYTEST")}
    env.update(CONVEYOR_STATE_DIR=str(tmp_path / "state"), PORT=str(free_port()), REDIS_PORT=str(free_port()))
    env["WORKER_PROCESSES"] = "2"
    return env


def health(port):
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None


def test_make_run_starts_everything_and_manage_py_finds_it(fresh_environment, tmp_path):
    log = open(tmp_path / "run.log", "w")
    run = subprocess.Popen(
        [sys.executable, "scripts/run.py"], cwd=BASE_DIR, env=fresh_environment, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        report = wait_for(
            lambda: (lambda answer: answer if answer and answer["workers"] >= 2 else None)(
                health(fresh_environment["PORT"])
            ),
            timeout=120,
            message="make run's /health to report its workers",
        )
        assert report["status"] == "ok" and report["queue"] == "connected"

        shell = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", PROBE],
            cwd=BASE_DIR,
            env={key: value for key, value in fresh_environment.items() if key not in ("PORT", "REDIS_PORT")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shell.returncode == 0, shell.stderr[-2000:]
        assert "redis up, 2 workers, periodic jobs registered" in shell.stdout, shell.stdout + shell.stderr[-2000:]
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(90)
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert code == 0, output[-3000:]
    assert "private Redis stopped" in output
    state = tmp_path / "state"
    assert all((state / name).exists() for name in ("secret_key", "field_encryption_key", "redis_url"))


PROBE = """
from rq import Worker
from jobs.connection import get_redis
from jobs.scheduling import get_scheduler
redis = get_redis()
assert redis.ping()
workers = Worker.count(connection=redis)
assert "conveyor-reconcile" in get_scheduler()
print(f"redis up, {workers} workers, periodic jobs registered")
"""
