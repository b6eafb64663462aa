"""What every benchmark needs: a private Redis, a migrated throwaway database, processes
that are always cleaned up, and a few statistics. Never the user's Redis or database."""

import argparse
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

from jobs import devredis  # noqa: E402 (needs BASE_DIR on sys.path)


@contextmanager
def bench_environment():
    """Yield the environment of every process of one benchmark run, and clean up after it."""
    # SIGTERM must unwind like Ctrl-C, so that the workers and Redis started here stop too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    redis_process, redis_url, _ = devredis.start(workdir / "redis", persistent=False)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(BASE_DIR),
        "SECRET_KEY": "bench-only-secret-key",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "BENCH_REDIS_URL": redis_url,
        "BENCH_CELERY_BROKER": redis_url.rsplit("/", 1)[0] + "/1",
        "LOG_LEVEL": "WARNING",
        "EAS_CLI": "/bin/false",
    }
    try:
        manage(env, "migrate", "--noinput", "-v0")
        yield env
    finally:
        devredis.stop(redis_process)
        shutil.rmtree(workdir, ignore_errors=True)


def manage(env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


@contextmanager
def running(commands, env):
    """Start each command (a list of argv) in its own process group; stop them all after.

    Their output goes to a file, shown only when the benchmark fails.
    """
    log = tempfile.TemporaryFile(mode="w+")
    processes = [
        subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        for argv in commands
    ]
    try:
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
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


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


def main(description, run, report, option, default):
    """Run one benchmark from the command line: `--OPTION N` sets its size."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{option}", type=int, default=default)
    size = getattr(parser.parse_args(), option)
    with bench_environment() as env:
        django_setup(env)
        report(run(env, size))
