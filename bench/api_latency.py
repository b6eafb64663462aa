"""POST /api/v1/publishing/initiate → 202 under gunicorn, against GET /health on the same
server (what the endpoint costs over a trivial request). No worker runs: jobs queue up.

gunicorn runs from the Procfile's own command (2 workers × 4 threads), on the bench's
Redis and throwaway database (SQLite, or PostgreSQL when DATABASE_URL names a server).
Sequential requests give the latency; then `threads` clients at once, each with its own
connection, give the rate.
"""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import database_name, main, running, summary_ms, wait_until
from core import procfile
from core.devredis import free_port

INITIATE = "/api/v1/publishing/initiate"
HEALTH = "/health"
WARM_UP = 20
BODY = {"platform": "ios", "credentials": {"expo_token": "bench-token-not-a-secret"}}


def prepare_user():
    """A user with a token and a project, through the services; returns (token, project id)."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from publishing.services import project_create

    user = User.objects.create_user(f"bench-{time.time_ns()}", password="unused-bench-pass-1")
    project = project_create(user=user, name="bench-app")
    return Token.objects.create(user=user).key, project.pk


def timed(client, method, path, tolerated=(), **kwargs):
    """Seconds one request took, and its status; a status neither 2xx nor `tolerated` raises."""
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 202, *tolerated):
        raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
    return elapsed, response.status_code


def sequential(client, method, path, requests, **kwargs):
    """p50/p95/p99 (ms) of `requests` requests, one after the other, after a warm-up."""
    for _ in range(WARM_UP):  # connections, imports, caches
        timed(client, method, path, **kwargs)
    return summary_ms([timed(client, method, path, **kwargs)[0] for _ in range(requests)])


def concurrent_rate(client_options, method, path, threads, per_thread, **kwargs):
    """Requests/s with `threads` clients sending `per_thread` requests each, all at once,
    and how many answered each status."""

    def one_client(_):
        with httpx.Client(**client_options) as client:
            return [timed(client, method, path, **kwargs)[1] for _ in range(per_thread)]

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        statuses = Counter(status for answers in pool.map(one_client, range(threads)) for status in answers)
    return threads * per_thread / (time.perf_counter() - started), statuses


def run(env, requests=300, threads=8, per_thread=100):
    token, project = prepare_user()
    body = {**BODY, "project": project}
    port = free_port()
    with running([procfile.commands()["web"]], {**procfile.environment(env, port), "ALLOWED_HOSTS": "127.0.0.1"}):
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: reachable(base + HEALTH), timeout=30, interval=0.2, what="gunicorn")
        options = {"base_url": base, "headers": {"Authorization": f"Token {token}"}, "timeout": 10}
        # /health first: it scans Redis's keys, and every initiate adds some.
        with httpx.Client(**options) as client:
            health = sequential(client, "GET", HEALTH, requests)
        # A 503 from /health (degraded) is counted and reported, not fatal.
        health_rate, health_statuses = concurrent_rate(options, "GET", HEALTH, threads, per_thread, tolerated=(503,))
        with httpx.Client(**options) as client:
            initiate = sequential(client, "POST", INITIATE, requests, json=body)
        initiate_rate, _ = concurrent_rate(options, "POST", INITIATE, threads, per_thread, json=body)
    return {
        "health": health,
        "initiate": initiate,
        "health_rate": health_rate,
        "initiate_rate": initiate_rate,
        "health_degraded": health_statuses[503],
        "threads": threads,
        "per_thread": per_thread,
        "database": database_name(env),
    }


def reachable(url):
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def report(results):
    health, initiate = results["health"], results["initiate"]
    clients = f"{results['threads']} clients × {results['per_thread']}"
    print(f"\nAPI under gunicorn (2 workers × 4 threads, {results['database']}), ms per request, sequential")
    print(f"  {'':<34} {'p50':>6} {'p95':>6} {'p99':>6}   {'requests/s, ' + clients:>26}")
    print(
        f"  {'GET /health (baseline)':<34} {health['p50']:>6.1f} {health['p95']:>6.1f} {health['p99']:>6.1f}"
        f"   {results['health_rate']:>26,.0f}"
    )
    print(
        f"  {'POST ' + INITIATE:<34} {initiate['p50']:>6.1f} {initiate['p95']:>6.1f} {initiate['p99']:>6.1f}"
        f"   {results['initiate_rate']:>26,.0f}"
    )
    print(
        f"  initiate vs health: {initiate['p50'] / health['p50']:.2f}× the p50 latency, "
        f"{results['initiate_rate'] / results['health_rate']:.2f}× the rate"
    )
    if results["health_degraded"]:
        # A 503 is /health saying a part was unavailable (jobs/health.py logs which).
        print(
            f"  note: {results['health_degraded']} of {results['threads'] * results['per_thread']} concurrent"
            " /health requests answered 503 (degraded)"
        )


def add_arguments(parser):
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients (default: 8)")
    parser.add_argument("--per-thread", type=int, default=100, help="requests per client (default: 100)")


if __name__ == "__main__":
    main(__doc__, run, report, "requests", 300, add_arguments)
