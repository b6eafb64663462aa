"""A private, throwaway redis-server for the whole test run.

pytest.ini loads this module as a plugin (`-p tests.redis_server`), so it is imported
before pytest-django sets Django up: settings.REDIS_URL always points here, never at a
user's Redis, whatever REDIS_URL the shell had. Fixtures stop and start it again on the
same port (Redis down, then back) through stop_redis() and start_redis().
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

from core import devredis

# The SQLite test database lives in var/, which a fresh clone does not have.
(Path(__file__).resolve().parent.parent / "var").mkdir(exist_ok=True)

TEST_REDIS_DIR = tempfile.mkdtemp(prefix="conveyor-test-redis-")
TEST_REDIS_PORT = devredis.free_port()
TEST_REDIS_PROCESS, TEST_REDIS_URL, TEST_REDIS_ORIGIN = devredis.start(
    TEST_REDIS_DIR, port=TEST_REDIS_PORT, persistent=False
)

os.environ["REDIS_URL"] = TEST_REDIS_URL
os.environ["ALLOW_PRIVATE_FETCH"] = "1"  # the stand-ins for the outside world listen on loopback
os.environ.setdefault("SECRET_KEY", "conveyor-tests-only-secret-key")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
# Projects name their source: the tests' projects are the directory "app" under this root.
TEST_PROJECTS_ROOT = tempfile.mkdtemp(prefix="conveyor-test-projects-")
(Path(TEST_PROJECTS_ROOT) / "app").mkdir()
(Path(TEST_PROJECTS_ROOT) / "app" / "app.json").write_text('{"expo": {"name": "demo-app", "slug": "demo-app"}}')
os.environ["EAS_PROJECTS_ROOT"] = TEST_PROJECTS_ROOT


def stop_redis():
    """Stop the test Redis (its data is gone: it runs without persistence)."""
    devredis.stop(TEST_REDIS_PROCESS)


def start_redis():
    """Start the test Redis again, empty, on the same port; a no-op while it runs."""
    global TEST_REDIS_PROCESS
    if TEST_REDIS_PROCESS.poll() is None:
        return
    TEST_REDIS_PROCESS, _, _ = devredis.start(TEST_REDIS_DIR, port=TEST_REDIS_PORT, persistent=False)


def pytest_report_header():
    return f"test redis: {TEST_REDIS_URL} ({TEST_REDIS_ORIGIN}, data in {TEST_REDIS_DIR})"


@atexit.register
def _remove_test_redis():
    stop_redis()
    shutil.rmtree(TEST_REDIS_DIR, ignore_errors=True)
    shutil.rmtree(TEST_PROJECTS_ROOT, ignore_errors=True)
