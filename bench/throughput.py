"""No-op jobs per second: the platform vs raw RQ (same worker class) vs Celery prefork.

For each variant: start its workers and hold each one in a job until all are up; enqueue
the N jobs one call at a time; then open the gate. The rate counts from the gate opening
to the moment the last job finishes (it reports its own time), so neither start-up nor
enqueueing is in it, and the enqueueing never competes with the workers for the CPU.

Over the same window it reads the CPU time of the workers' processes and of Redis, and
the commands Redis ran: per job, these hardly move when other work shares the machine,
whereas the rate does.
"""

import time

from bench import tasks
from bench.common import main, redis_commands_processed, redis_cpu_seconds, session_cpu_seconds
from bench.variants import VARIANTS, held_workers, open_gate

FINISH_TIMEOUT = tasks.BLOCKING_LIMIT
# The forking worker runs under 100 jobs/s: fewer jobs keep its run short.
FORK_JOBS_SHARE = 10
REFERENCE_PROCESSES = 2


def measure(variant, env, processes, jobs):
    """Return {"rate", "worker_cpu", "redis_cpu", "commands"}: jobs/s, then per job the
    workers' CPU ms, Redis's CPU ms and the Redis commands run."""
    redis = tasks.client()
    with held_workers(variant, env, processes) as workers:
        enqueue_all(variant, jobs)
        before = usage(redis, workers)
        opened = time.time()
        open_gate(processes)
        finished = wait_for_last_job(redis)
        after = usage(redis, workers)
    per_job = {name: (after[name] - before[name]) / jobs for name in before}
    return {
        "rate": jobs / (finished - opened),
        "worker_cpu": 1000 * per_job["worker_cpu"],
        "redis_cpu": 1000 * per_job["redis_cpu"],
        "commands": per_job["commands"],
    }


def enqueue_all(variant, jobs):
    """Enqueue `jobs` count jobs one call at a time, as an app would."""
    enqueue = variant.enqueuer("count")
    for _ in range(jobs):
        enqueue(jobs)


def usage(redis, workers):
    return {
        "worker_cpu": session_cpu_seconds(workers),
        "redis_cpu": redis_cpu_seconds(redis),
        "commands": redis_commands_processed(redis),
    }


def wait_for_last_job(redis):
    reply = redis.blpop(tasks.ALL_DONE, timeout=FINISH_TIMEOUT)
    if reply is None:
        done = int(redis.get(tasks.DONE) or 0)
        raise TimeoutError(f"the jobs did not finish within {FINISH_TIMEOUT}s ({done} done)")
    return float(reply[1])


def plan(jobs, processes):
    """[(variant, processes, jobs)]: the platform at every pool size, the baselines at
    those sizes and at 2, the reference variants at 2."""
    sizes = sorted(set(processes) | {REFERENCE_PROCESSES})
    steps = [("platform", size, jobs) for size in sorted(set(processes))]
    steps += [("rq-simple", size, jobs) for size in sizes]
    steps += [("rq-fork", REFERENCE_PROCESSES, max(100, jobs // FORK_JOBS_SHARE))]
    steps += [("celery", size, jobs) for size in sizes]
    steps += [("celery-strict", REFERENCE_PROCESSES, jobs)]
    return steps


def run(env, jobs=3000, processes=(2, 4)):
    """Return [{"label", "name", "processes", "jobs", "rate", "worker_cpu", "redis_cpu", "commands"}]."""
    results = []
    for name, size, count in plan(jobs, processes):
        figures = measure(VARIANTS[name], env, size, count)
        results.append({"label": f"{name} ×{size}", "name": name, "processes": size, "jobs": count, **figures})
        print(f"  {name} ×{size}: {figures['rate']:,.0f} jobs/s ({count} jobs)", flush=True)
    return results


def ratio(result, results, baseline):
    """result's rate over `baseline`'s with the same pool size."""
    for other in results:
        if other["name"] == baseline and other["processes"] == result["processes"]:
            return f"{result['rate'] / other['rate']:.2f}×"
    return "—"


def report(results):
    print("\nno-op jobs/s, from the gate opening to the last job finished; CPU and Redis commands per job")
    print(
        f"  {'':<17} {'jobs':>5} {'jobs/s':>7} {'vs rq-simple':>13} {'vs celery':>10}"
        f" {'worker CPU ms':>14} {'Redis CPU ms':>13} {'Redis cmds':>11}"
    )
    for result in results:
        print(
            f"  {result['label']:<17} {result['jobs']:>5} {result['rate']:>7,.0f}"
            f" {ratio(result, results, 'rq-simple'):>13} {ratio(result, results, 'celery'):>10}"
            f" {result['worker_cpu']:>14.2f} {result['redis_cpu']:>13.2f} {result['commands']:>11.1f}"
        )
    print("  ratios against the baseline with the same number of processes")


def add_arguments(parser):
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[2, 4], help="worker pool sizes to compare (default: 2 4)"
    )


if __name__ == "__main__":
    main(__doc__, run, report, "jobs", 3000, add_arguments)
