"""Every benchmark, one after the other, with the figures at the end (about 5 minutes)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import alerts, api_latency, ingest, latency, throughput  # noqa: E402
from bench.common import bench_environment, django_setup  # noqa: E402


def main():
    # One Redis and one database for all: Django reads its settings once per process.
    with bench_environment() as env:
        django_setup(env)
        print("throughput…", flush=True)
        jobs = throughput.run(env)
        print("latency…", flush=True)
        waits = latency.run(env)
        print("API…", flush=True)
        api = api_latency.run(env)
        print("ingest…", flush=True)
        posts = ingest.run(env)
        print("alerts…", flush=True)
        checks = alerts.run(env)
    throughput.report(jobs)
    latency.report(waits)
    api_latency.report(api)
    ingest.report(posts)
    alerts.report(checks)


if __name__ == "__main__":
    main()
