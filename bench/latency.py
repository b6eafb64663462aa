"""Enqueue-to-finished latency of single jobs on idle workers: platform, raw RQ, Celery.

One job at a time: note the time, enqueue, wait (BLPOP) for the time the job reports
when it finishes. All workers block on Redis while idle (RQ on BLMOVE, Celery's
consumer on BRPOP), so a job is picked up as soon as it is pushed: no polling delay.
"""

import time

from bench import tasks
from bench.common import main, summary_ms
from bench.variants import VARIANTS, held_workers, open_gate

PROCESSES = 2
WARM_UP = 20
JOB_TIMEOUT = 10
COMPARED = ("platform", "rq-simple", "celery")


def measure(variant, env, samples):
    """p50/p95/p99/mean (ms) over `samples` jobs, after WARM_UP jobs not counted, and
    "enqueue_p50": the median time the enqueue call itself took (the caller's share)."""
    enqueue = variant.enqueuer("stamp")
    with held_workers(variant, env, PROCESSES):
        open_gate(PROCESSES)
        timings = [one_job(enqueue) for _ in range(WARM_UP + samples)][WARM_UP:]
    figures = summary_ms([total for total, _ in timings])
    figures["enqueue_p50"] = summary_ms([call for _, call in timings])["p50"]
    return figures


def one_job(enqueue):
    """Return (seconds from just before the enqueue to the job's finish, seconds in the enqueue call)."""
    started = time.time()
    enqueue()
    enqueued = time.time()
    reply = tasks.client().blpop(tasks.FINISHED_AT, timeout=JOB_TIMEOUT)
    if reply is None:
        raise TimeoutError(f"a job did not finish within {JOB_TIMEOUT}s")
    return float(reply[1]) - started, enqueued - started


def run(env, samples=300):
    """Return [(label, {"p50", "p95", "p99", "mean", "enqueue_p50"})]."""
    results = []
    for name in COMPARED:
        figures = measure(VARIANTS[name], env, samples)
        results.append((f"{name} ×{PROCESSES}", figures))
        print(f"  {name} ×{PROCESSES}: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms", flush=True)
    return results


def report(results):
    figures = dict(results)
    rq, celery = figures[f"rq-simple ×{PROCESSES}"], figures[f"celery ×{PROCESSES}"]
    print("\nenqueue-to-finished latency, ms (one job at a time, idle workers)")
    print(f"  {'':<17} {'p50':>6} {'p95':>6} {'p99':>6}  p50 vs rq-simple  p50 vs celery  enqueue call p50")
    for label, row in results:
        print(
            f"  {label:<17} {row['p50']:>6.1f} {row['p95']:>6.1f} {row['p99']:>6.1f}"
            f"  {row['p50'] / rq['p50']:>15.2f}×  {row['p50'] / celery['p50']:>12.2f}×  {row['enqueue_p50']:>16.2f}"
        )


if __name__ == "__main__":
    main(__doc__, run, report, "samples", 300)
