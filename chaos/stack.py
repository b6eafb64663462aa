"""The whole stack under fire, started as `make run` starts it, but with every part in our
hands: its own Redis (to flush, stop and restart), a throwaway database (SQLite, or a new
PostgreSQL database when DATABASE_URL names a server), gunicorn, `rqworker-pool` pools,
`rqscheduler`, and the stand-ins for the outside world (EAS, Mastodon, watched pages and a
webhook receiver), each a real process on loopback."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from core import devredis, procfile  # noqa: E402 (needs BASE_DIR on sys.path)
from core.devdatabase import is_postgres, throwaway_database  # noqa: E402
from tests.fakes.eas_fake import FakeEas  # noqa: E402
from tests.fakes.outside_fake import Outside  # noqa: E402
from tests.fakes.platforms_fake import FakePlatforms  # noqa: E402

# Seconds between a worker's heartbeats: short, so that the drill's faults heal fast.
WORKER_HEARTBEAT = 1

# Short delays, so that minutes of chaos see many retries, polls and reconciliations. The
# watched pages share one host, so their per-domain limit (one fetch a second, in bursts of
# six) binds under the drill's load: the drill checks that it holds across hosts, as it does
# the publishing queue's cap of one (the default).
POLICIES = {
    "publishing-builds": {"retry_delays": [1, 2, 3], "rate_limit": "1000/1"},
    "content-aggregation": {"retry_delays": [1, 2, 3], "rate_limit": "1000/1"},
    "user-actions": {"retry_delays": [1, 2, 3]},
    "rules-run": {"retry_delays": [1, 2], "rate_limit": "6/6"},
    "alerts-dispatch": {"retry_delays": [1, 2, 3, 4, 5]},
}


class Stack:
    def __init__(self, *, pools=1, workers_per_pool=4, log=print):
        self.pools_wanted, self.workers_per_pool, self.log = pools, workers_per_pool, log
        self.workdir = Path(tempfile.mkdtemp(prefix="conveyor-chaos-"))
        self.processes = {}
        self.redis = None
        self.database = ExitStack()

    # --- start and stop -----------------------------------------------------------------------

    def start(self):
        self.redis_port = devredis.free_port()
        self.start_redis()
        self.eas = FakeEas(self.workdir / "eas")
        self.platforms = FakePlatforms().start()
        self.outside = Outside()
        self.env = self.environment()
        self.manage("migrate", "--noinput", "-v0")
        self.web_port = devredis.free_port()
        self.start_process("web", procfile.commands()["web"], procfile.environment(self.env, self.web_port))
        for index in range(self.pools_wanted):
            self.start_pool(index)
        self.start_scheduler("scheduler")
        self.wait_for_web()
        return self

    def wait_for_web(self, timeout=60):
        """gunicorn --preload loads the app before it listens: nothing may call the API until
        it answers."""
        import httpx

        def answers():
            try:
                return httpx.get(f"{self.url}/health", timeout=2).status_code in (200, 503)
            except httpx.HTTPError:
                return False

        if not wait_until(answers, timeout):
            raise RuntimeError(f"the web process did not answer within {timeout}s")

    def stop(self):
        for name in list(self.processes):
            self.stop_process(name)
        for stand_in in ("platforms", "outside"):
            if hasattr(self, stand_in):
                getattr(self, stand_in).stop()
        if self.redis:
            devredis.stop(self.redis)
        self.database.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def environment(self):
        projects = self.workdir / "projects" / "app"
        projects.mkdir(parents=True)
        (projects / "app.json").write_text('{"expo": {"slug": "demo-app"}}')
        env = {
            **os.environ,
            "PYTHONPATH": str(BASE_DIR),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CONVEYOR_STATE_DIR": str(self.workdir / "state"),
            "SECRET_KEY": "chaos-only-secret-key",
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "DATABASE_URL": self.database.enter_context(throwaway_database(self.workdir, "conveyor_chaos")),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "ALLOW_PRIVATE_FETCH": "1",
            "EAS_CLI": self.eas.executable,
            "EAS_POLL_INTERVAL": "1",
            "EAS_PROJECTS_ROOT": str(projects.parent),
            "WORKER_HEARTBEAT": str(WORKER_HEARTBEAT),
            "WORKER_ALIVE_TTL": "3",
            "WORKER_SHUTDOWN_GRACE": "20",
            "RECONCILE_INTERVAL": "2",
            "RECONCILE_GRACE": "1",
            "SCHEDULER_INTERVAL": "1",
            "LOG_LEVEL": "WARNING",
            "THROTTLE_PUBLISHING": "100000/second",
            "THROTTLE_RUNS": "100000/second",
            "THROTTLE_FETCHES": "100000/second",
            "THROTTLE_ACTIONS": "100000/second",
            "RULE_FRONT_RUNS_PER_HOUR": "1000000",
        }
        for queue, policy in POLICIES.items():
            env[f"CONVEYOR_QUEUE_{queue.upper().replace('-', '_')}_JSON"] = json.dumps(policy)
        env.pop("PYTEST_CURRENT_TEST", None)
        return env

    @property
    def is_postgres(self):
        return is_postgres(self.env["DATABASE_URL"])

    # --- processes ----------------------------------------------------------------------------

    def manage(self, *args):
        subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, check=True)

    def start_process(self, name, argv, extra_env=None):
        log = open(self.workdir / f"{name}.log", "a")
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=BASE_DIR,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self.processes[name]

    def stop_process(self, name, timeout=40):
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def start_pool(self, index):
        """A pool of workers in a process group of its own: one "host", named host-INDEX in
        django-rq's dashboard, as a separate machine on the same Redis and database would be."""
        argv = [sys.executable, "manage.py", "rqworker-pool", "--num-workers", str(self.workers_per_pool)]
        return self.start_process(f"pool-{index}", argv, {"WORKER_HOSTNAME": f"host-{index}"})

    def kill_host(self, name):
        """SIGKILL a whole pool's process group: its workers and their schedulers, at once."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def start_scheduler(self, name):
        return self.start_process(name, [sys.executable, "manage.py", "rqscheduler"])

    def pool_names(self):
        return sorted(name for name in self.processes if name.startswith("pool-"))

    @property
    def expected_workers(self):
        return len(self.pool_names()) * self.workers_per_pool

    def logs(self):
        return "\n".join(f"--- {path.name}\n{path.read_text()[-4000:]}" for path in sorted(self.workdir.glob("*.log")))

    # --- Redis --------------------------------------------------------------------------------

    def start_redis(self):
        self.redis, _, _ = devredis.start(self.workdir / "redis", port=self.redis_port, persistent=False)

    def stop_redis(self):
        devredis.stop(self.redis)

    def redis_client(self):
        import redis

        return redis.Redis(port=self.redis_port, socket_timeout=5)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.web_port}"


def wait_until(predicate, timeout, interval=0.2):
    """Poll until predicate() is truthy; its value, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
