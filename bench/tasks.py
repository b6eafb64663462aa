"""The jobs every benchmark runs, the same for RQ, the platform and Celery."""

import os
import time

import redis

_clients = {}


def client():
    """A client for this run's Redis (each benchmark starts its own)."""
    url = os.environ["BENCH_REDIS_URL"]
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def count():
    """A no-op but for one INCR, so the bench sees when the last job is done."""
    client().incr("bench:done")


def stamp():
    """Report the finish time, for enqueue-to-finished latency."""
    client().rpush("bench:finished-at", time.time())
