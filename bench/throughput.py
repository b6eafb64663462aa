"""No-op jobs per second: the platform vs raw RQ (same worker class) vs Celery prefork.

Jobs are enqueued first, then the workers start; the rate is counted from the first
finished job to the last, so start-up and enqueueing are not in it.
"""

import time

from bench.common import main, running, wait_until
from bench.tasks import client
from bench.variants import VARIANTS


def measure(variant, env, processes, jobs):
    client().flushall()
    enqueue = variant.enqueuer(env, "count")
    for _ in range(jobs):
        enqueue()
    with running(variant.workers(env, processes), env):
        wait_until(lambda: int(client().get("bench:done") or 0) >= 1, timeout=60, what="the first job")
        first = time.perf_counter()
        wait_until(lambda: int(client().get("bench:done") or 0) >= jobs, timeout=600, what="the last job")
        elapsed = time.perf_counter() - first
    return (jobs - 1) / elapsed


def run(env, jobs=3000, fork_jobs=300):
    """Return [(label, jobs/s)] for every variant."""
    plan = [
        ("platform", 2, jobs),
        ("platform", 4, jobs),
        ("rq-simple", 2, jobs),
        ("rq-simple", 4, jobs),
        ("rq-fork", 2, fork_jobs),
        ("celery", 2, jobs),
    ]
    results = []
    for name, processes, count in plan:
        rate = measure(VARIANTS[name], env, processes, count)
        results.append((f"{name} ×{processes}", rate))
        print(f"  {name} ×{processes}: {rate:,.0f} jobs/s ({count} jobs)", flush=True)
    return results


def report(results):
    rates = dict(results)
    print("\nno-op jobs/s (2 cores)")
    for label, rate in results:
        versus = f"{rate / rates['rq-simple ×2']:.2f}× rq-simple ×2, {rate / rates['celery ×2']:.2f}× celery ×2"
        print(f"  {label:<16} {rate:>8,.0f}   {versus}")


if __name__ == "__main__":
    main(__doc__, run, report, "jobs", 3000)
