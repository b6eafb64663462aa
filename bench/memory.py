"""Memory of the idle stack that `make run` starts: the Procfile's processes (web, the worker
pool, the scheduler), run from the Procfile itself, plus the private Redis, measured as PSS
(proportional set size: a page shared by N processes counts 1/N to each, so the sum is what
the stack really holds).

Then the cost of one more worker: the stack started again with WORKER_PROCESSES two higher,
the pool's difference halved. Read from /proc/PID/smaps_rollup (Linux). Idle means nothing
queued: run_all runs this one first, before other benchmarks leave work waiting.
"""

import time
from pathlib import Path

from bench.common import main, running, wait_until
from core import procfile
from core.devredis import free_port

SETTLE_SECONDS = 8  # the pool's workers registered and idle, the scheduler's first round done
ADDED_WORKERS = 2


def pss_kb(pid):
    """PSS of one process in kB, 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def tree(pid):
    """pid and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(child) for child in children.read_text().split())
    return found


def stack_pss(processes):
    """{name: (process count, MB)} of each started process with its children."""
    figures = {}
    for name, process in processes.items():
        pids = tree(process.pid)
        figures[name] = (len(pids), sum(pss_kb(pid) for pid in pids) / 1024)
    return figures


def workers_registered(env, count):
    import redis
    from rq import Worker

    connection = redis.Redis.from_url(env["REDIS_URL"])
    return lambda: Worker.count(connection=connection) >= count


def measure_stack(env, pool_size):
    env = {**procfile.environment(env, free_port()), "WORKER_PROCESSES": str(pool_size), "ALLOWED_HOSTS": "127.0.0.1"}
    commands = procfile.commands()
    with running(list(commands.values()), env) as processes:
        wait_until(workers_registered(env, pool_size), 60, 0.2, f"{pool_size} workers")
        time.sleep(SETTLE_SECONDS)
        return stack_pss(dict(zip(commands, processes)))


def redis_pss(env):
    import redis

    pid = redis.Redis.from_url(env["REDIS_URL"]).info("server")["process_id"]
    return pss_kb(pid) / 1024


def run(env, pool_size=4):
    stack = measure_stack(env, pool_size)
    larger = measure_stack(env, pool_size + ADDED_WORKERS)
    return {
        "stack": stack,
        "redis": redis_pss(env),
        "per_added_worker": (larger["worker"][1] - stack["worker"][1]) / ADDED_WORKERS,
        "pool_size": pool_size,
    }


def report(results):
    print(f"\nmemory of the idle stack, PSS (the Procfile's processes, WORKER_PROCESSES={results['pool_size']})")
    total = 0.0
    for name, (count, mb) in results["stack"].items():
        print(f"  {name:<28} {count:>3} processes {mb:>8.1f} MB")
        total += mb
    print(f"  {'Redis (private)':<28} {1:>3} process   {results['redis']:>8.1f} MB")
    print(f"  {'the stack':<28}               {total:>8.1f} MB   with Redis {total + results['redis']:.1f} MB")
    print(f"  one more worker in the pool                  {results['per_added_worker']:>8.1f} MB")


if __name__ == "__main__":
    main(__doc__, run, report, "pool_size", 4)
