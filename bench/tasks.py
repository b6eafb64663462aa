"""The jobs every benchmark runs, the same for RQ, the platform and Celery."""

import os
import time

import redis

_client = None


def client():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


def count():
    """A no-op but for one INCR, so the bench sees when the last job is done."""
    client().incr("bench:done")


def stamp():
    """Report the finish time, for enqueue-to-finished latency."""
    client().rpush("bench:finished-at", time.time())
