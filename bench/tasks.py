"""The jobs every benchmark runs, the same for the platform, raw RQ and Celery.

Each is a no-op but for one Redis write, so that the bench learns when the work ends
without polling (polling would add Redis commands and CPU to what is measured).
"""

import os
import time

import redis

HOLDING = "bench:holding"
GATE = "bench:gate"
DONE = "bench:done"
ALL_DONE = "bench:all-done"
FINISHED_AT = "bench:finished-at"
BLOCKING_LIMIT = 300

_clients = {}


def client():
    """A client for this run's Redis (each benchmark starts its own)."""
    url = os.environ["BENCH_REDIS_URL"]
    if url not in _clients:
        # Longer than any blocking call of the bench (at most BLOCKING_LIMIT): redis-py's
        # default of 5 s would cut a BLPOP short.
        _clients[url] = redis.Redis.from_url(url, socket_timeout=BLOCKING_LIMIT + 30)
    return _clients[url]


def hold(timeout=60):
    """Keep this worker process busy until the bench opens the gate.

    One such job per worker proves every worker is up before the clock starts, and keeps
    them off the measured jobs while the bench enqueues those (no CPU contention).
    """
    client().incr(HOLDING)
    client().blpop(GATE, timeout=timeout)


def count(target):
    """One INCR; the job that makes the count reach `target` reports the time."""
    if client().incr(DONE) == target:
        client().rpush(ALL_DONE, time.time())


def stamp():
    """Report the finish time, for enqueue-to-finished latency."""
    client().rpush(FINISHED_AT, time.time())


def http():
    """One HTTP client per worker process, kept: the baseline at its best."""
    import httpx

    if "http" not in _clients:
        _clients["http"] = httpx.Client()
    return _clients["http"]


def check_page(url):
    """What a rule check does at its core, without the platform: GET the page, pick the
    watched part, compare it with the last one kept in Redis."""
    import lxml.html

    text = "\n".join(
        node.text_content() for node in lxml.html.document_fromstring(http().get(url).text).cssselect("#price")
    )
    client().getset(f"bench:last:{url}", text)
    client().incr("bench:done")


def post_hook(url, message):
    """What a delivery does at its core: POST the alert's JSON to a webhook."""
    http().post(url, json=message).raise_for_status()
    client().incr("bench:done")
