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

    text = "\n".join(node.text_content() for node in lxml.html.document_fromstring(http().get(url).text).cssselect("#price"))
    client().getset(f"bench:last:{url}", text)
    client().incr("bench:done")


def post_hook(url, message):
    """What a delivery does at its core: POST the alert's JSON to a webhook."""
    http().post(url, json=message).raise_for_status()
    client().incr("bench:done")
