"""Every benchmark, one after the other, then the figures together (about 6 minutes on
2 cores). Run it as `.venv/bin/python bench/run_all.py` (what `make bench` does).

Exits 0 when every benchmark ran; a benchmark that fails is reported and the others
still run, and the exit status is then 1.
"""

import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import alerts, api_latency, extract, ingest, latency, memory, per_job, throughput  # noqa: E402
from bench.common import bench_environment, database_name, django_setup  # noqa: E402
from bench.tasks import client  # noqa: E402

BENCHMARKS = [
    # First: an idle stack is one with nothing queued (the API benchmark leaves thousands of
    # publishings waiting, which its workers would then run).
    ("memory", memory),
    ("throughput", throughput),
    ("latency", latency),
    ("API", api_latency),
    ("ingest", ingest),
    ("alerts", alerts),
    ("per job", per_job),
    ("extract", extract),
]


def machine(env):
    import celery
    import django
    import rq

    redis_version = client().info("server")["redis_version"]
    return (
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" Redis {redis_version}, {database_name(env)}, Django {django.__version__}, RQ {rq.__version__},"
        f" Celery {celery.__version__}"
    )


def run_each(env):
    """Return [(name, module, results or None)]; a failure is printed, not raised."""
    outcomes = []
    for name, module in BENCHMARKS:
        print(f"{name}…", flush=True)
        started = time.monotonic()
        try:
            results = module.run(env)
        except Exception:
            traceback.print_exc()
            results = None
        print(f"  ({time.monotonic() - started:.0f}s)", flush=True)
        outcomes.append((name, module, results))
    return outcomes


def main():
    # One Redis and one database for all: Django reads its settings once per process.
    with bench_environment() as env:
        django_setup(env)
        about = machine(env)
        outcomes = run_each(env)
    print(f"\n=== Conveyor benchmarks: {about}")
    for name, module, results in outcomes:
        if results is None:
            print(f"\n{name}: FAILED (traceback above)")
        else:
            module.report(results)
    return 0 if all(results is not None for _, _, results in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
