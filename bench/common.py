"""What every benchmark needs: a private Redis, a migrated throwaway database, processes
that are always cleaned up, and a few statistics. Never the user's Redis or data.

The database is SQLite in the run's temporary directory, unless DATABASE_URL names a
PostgreSQL server: then a database of its own is created there and dropped afterwards.
"""

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from core import devredis  # noqa: E402 (needs BASE_DIR on sys.path)
from core.devdatabase import is_postgres, throwaway_database  # noqa: E402


@contextmanager
def bench_environment():
    """Yield the environment of every process of one benchmark run, and clean up after it."""
    # SIGTERM must unwind like Ctrl-C, so that the workers and Redis started here stop too;
    # and Ctrl-C must unwind even when started from a shell that ignores it (`cmd &`).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    try:
        redis_process, redis_url, _ = devredis.start(workdir / "redis", persistent=False)
        try:
            with throwaway_database(workdir, "conveyor_bench") as database_url:
                env = environment(redis_url, database_url)
                manage(env, "migrate", "--noinput", "-v0")
                yield env
        finally:
            devredis.stop(redis_process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def database_name(env):
    """The database a run used, for its report: "SQLite" or "PostgreSQL 16.4"."""
    if not is_postgres(env["DATABASE_URL"]):
        return "SQLite"
    from django.db import connection

    major, minor = divmod(connection.pg_version, 10000)
    return f"PostgreSQL {major}.{minor}"


def environment(redis_url, database_url):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(BASE_DIR),
        "SECRET_KEY": "bench-only-secret-key",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BENCH_REDIS_URL": redis_url,
        # Celery's broker (and strict Celery's results) in another database of the same Redis.
        "BENCH_CELERY_BROKER": redis_url.rsplit("/", 1)[0] + "/1",
        "LOG_LEVEL": "WARNING",
        "EAS_CLI": "/bin/false",
        # The API benchmark sends thousands of publishing requests as one user: the per-user
        # throttle is still consulted on each, but never refuses one.
        "THROTTLE_PUBLISHING": "1000000/second",
    }


def manage(env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


@contextmanager
def running(commands, env):
    """Start each command (a list of argv) in its own process group; stop them all after.

    Their output goes to a file, shown only when the benchmark fails.
    """
    log = tempfile.TemporaryFile(mode="w+")
    processes = []
    try:
        for argv in commands:
            processes.append(
                subprocess.Popen(
                    argv,
                    cwd=BASE_DIR,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
        yield processes
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read()[-5000:])
        raise
    finally:
        for process in processes:
            stop_group(process)
        log.close()


def stop_group(process):
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def django_setup(env):
    """Use Django in this process, on the bench's Redis and database."""
    names = ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL")
    os.environ.update({key: env[key] for key in names})
    for name in ("FIELD_ENCRYPTION_KEY", "BENCH_REDIS_URL", "BENCH_CELERY_BROKER"):
        os.environ[name] = env[name]
    import django

    django.setup()


def wait_until(predicate, timeout, interval=0.005, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def percentile(values, fraction):
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary_ms(seconds):
    """p50/p95/p99 and mean of durations given in seconds, in milliseconds."""
    return {
        "p50": 1000 * percentile(seconds, 0.50),
        "p95": 1000 * percentile(seconds, 0.95),
        "p99": 1000 * percentile(seconds, 0.99),
        "mean": 1000 * statistics.fmean(seconds),
    }


def python(*args):
    return [sys.executable, *args]


def redis_commands_processed(client):
    """Commands the Redis server has run since it started, from every client."""
    return int(client.info("stats")["total_commands_processed"])


def redis_cpu_seconds(client):
    """CPU time the Redis server has used since it started (user + system)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def session_cpu_seconds(processes):
    """CPU time used so far by every process in the sessions these processes lead
    (each was started with start_new_session), with their reaped children's.

    Unlike a rate, CPU time per job hardly moves when other work shares the machine.
    """
    leaders = {process.pid for process in processes}
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        # proc(5), after "pid (comm)": [3] is the session, [11:15] utime stime cutime cstime.
        if int(fields[3]) in leaders:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def main(description, run, report, option, default, add_arguments=None):
    """Run one benchmark from the command line: `--OPTION N` sets its size; other options
    (add_arguments) are passed to run() by name too."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{option}", type=int, default=default)
    if add_arguments:
        add_arguments(parser)
    options = vars(parser.parse_args())
    with bench_environment() as env:
        django_setup(env)
        report(run(env, **options))
