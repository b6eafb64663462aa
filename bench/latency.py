"""Enqueue-to-finished latency of single jobs on idle workers: platform, raw RQ, Celery.

One job at a time: note the time, enqueue, wait (BLPOP) for the job's finish time.
"""

import time

from bench.common import main, running, summary_ms, wait_until
from bench.tasks import client
from bench.variants import VARIANTS

WARM_UP = 20


def measure(variant, env, samples):
    client().flushall()
    enqueue = variant.enqueuer(env, "stamp")
    latencies = []
    with running(variant.workers(env, 2), env):
        wait_until(lambda: warm(enqueue), timeout=60, interval=0.2, what="workers to start")
        for index in range(WARM_UP + samples):
            started = time.time()
            enqueue()
            _, finished = client().blpop("bench:finished-at", timeout=10)
            if index >= WARM_UP:
                latencies.append(float(finished) - started)
    return summary_ms(latencies)


def warm(enqueue):
    enqueue()
    return client().blpop("bench:finished-at", timeout=1) is not None


def run(env, samples=300):
    results = []
    for name in ("platform", "rq-simple", "celery"):
        figures = measure(VARIANTS[name], env, samples)
        results.append((f"{name} ×2", figures))
        print(f"  {name} ×2: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms", flush=True)
    return results


def report(results):
    base = dict(results)["rq-simple ×2"]
    print("\nenqueue-to-finished latency, ms (one job at a time)")
    print(f"  {'':<16} {'p50':>7} {'p95':>7} {'p99':>7}   p50 vs rq-simple")
    for label, figures in results:
        ratio = figures["p50"] / base["p50"]
        print(f"  {label:<16} {figures['p50']:>7.1f} {figures['p95']:>7.1f} {figures['p99']:>7.1f}   {ratio:.2f}×")


if __name__ == "__main__":
    main(__doc__, run, report, "samples", 300)
