"""POST /api/v1/publishing/initiate → 202 under gunicorn, against GET /health on the same
server (what the endpoint costs over a trivial request). No worker runs: jobs queue up."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import main, manage, python, running, summary_ms, wait_until
from jobs.devredis import free_port

BODY = {"platform": "ios", "credentials": {"expo_token": "bench-token-not-a-secret"}}


def prepare_user(env):
    """A user with a token and a project; returns (token, project id)."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from publishing.services import project_create

    user = User.objects.create_user("bench", password="unused-bench-pass-1")
    project = project_create(user=user, name="bench-app")
    return Token.objects.create(user=user).key, project.pk


def gunicorn(port):
    return python(
        "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--threads", "4", "--no-control-socket",
    )


def timed(client, method, path, **kwargs):
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)
    elapsed = time.perf_counter() - started
    assert response.status_code in (200, 202), response.text
    return elapsed


def sequential(client, method, path, requests, **kwargs):
    for _ in range(20):  # warm-up: connections, imports, caches
        timed(client, method, path, **kwargs)
    return summary_ms([timed(client, method, path, **kwargs) for _ in range(requests)])


def concurrent_rate(client, path, body, threads, per_thread):
    def worker(_):
        for _ in range(per_thread):
            timed(client, "POST", path, json=body)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return threads * per_thread / (time.perf_counter() - started)


def run(env, requests=300):
    token, project = prepare_user(env)
    manage(env, "collectstatic", "--noinput", "-v0")
    port = free_port()
    with running([gunicorn(port)], {**env, "ALLOWED_HOSTS": "127.0.0.1"}):
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: reachable(f"{base}/health"), timeout=30, interval=0.2, what="gunicorn")
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            body = {**BODY, "project": project}
            health = sequential(client, "GET", "/health", requests)
            initiate = sequential(client, "POST", "/api/v1/publishing/initiate", requests, json=body)
            rate = concurrent_rate(client, "/api/v1/publishing/initiate", body, threads=8, per_thread=50)
    return {"health": health, "initiate": initiate, "initiate_rate": rate}


def reachable(url):
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def report(results):
    health, initiate = results["health"], results["initiate"]
    print("\nAPI under gunicorn (2 workers × 4 threads, SQLite), sequential requests, ms")
    print(f"  {'':<34} {'p50':>6} {'p95':>6}")
    print(f"  {'GET /health (baseline)':<34} {health['p50']:>6.1f} {health['p95']:>6.1f}")
    print(f"  {'POST /api/v1/publishing/initiate':<34} {initiate['p50']:>6.1f} {initiate['p95']:>6.1f}"
          f"   {initiate['p50'] / health['p50']:.2f}× health")
    print(f"  initiate, 8 concurrent clients: {results['initiate_rate']:,.0f} requests/s")


if __name__ == "__main__":
    main(__doc__, run, report, "requests", 300)
