"""The platform's counters, kept in Redis so that every worker process adds to the same ones.

One hash (HINCRBY): an attempt's counters go in one round trip when it ends, a rate-limit
wait rides in the pipeline that defers its job. A process that restarts loses nothing; a
Redis that lost its data starts them from zero again, which Prometheus reads as a counter
reset. jobs.prometheus turns them into the /metrics exposition.

Fields are names and labels joined by "|": `attempts|aggregation.Fetch|succeeded`.
"""

import logging
from bisect import bisect_left

import redis

from .connection import get_redis, key

log = logging.getLogger("conveyor.metrics")

KEY = key("metrics")
SEPARATOR = "|"
# Upper bounds of the attempt duration buckets, in seconds: from a webhook to an EAS submit.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
INFINITY = "+Inf"

# Counters the apps add to (lifecycle.Kind.counts), without labels.
POSTS_INGESTED = "posts_ingested"
RULE_CHANGES = "rule_changes"


def field(*parts):
    return SEPARATOR.join(map(str, parts))


def rows_finished(kind, status):
    return field("rows_finished", kind, status)


def bucket_of(seconds):
    """The label of the one bucket `seconds` falls in (they are summed up when scraped)."""
    index = bisect_left(DURATION_BUCKETS, seconds)
    return str(DURATION_BUCKETS[index]) if index < len(DURATION_BUCKETS) else INFINITY


def attempt_ended(kind, outcome, seconds, counts):
    """Count an ended attempt of a `kind` row, its duration (None: unknown, a lost one) and
    the counters its steps added (`counts`), in one round trip."""
    increments = {field("attempts", kind, outcome): 1, **counts}
    if seconds is not None:
        increments[field("duration_bucket", kind, outcome, bucket_of(seconds))] = 1
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            for name, amount in increments.items():
                pipe.hincrby(KEY, name, amount)
            if seconds is not None:
                pipe.hincrbyfloat(KEY, field("duration_sum", kind, outcome), seconds)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("metrics of an attempt of %s not counted: %s", kind, exc)


def add(counts, pipeline=None):
    """Add `counts` ({field: amount}); in `pipeline` when given, else in a round trip of its own."""
    if pipeline is not None:
        for name, amount in counts.items():
            pipeline.hincrby(KEY, name, amount)
        return
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            add(counts, pipe)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("metrics not counted: %s", exc)


def rate_limit_wait(queue_name, pipeline):
    """A job of the queue waits for its rate limit (jobs.worker defers it)."""
    add({field("rate_limit_waits", queue_name): 1}, pipeline)


def reconciler_resumed(tracked_name, count):
    add({field("reconciler_resumed", tracked_name): count})


def read(connection=None):
    """Every counter: {(name, *labels): value}."""
    raw = (connection or get_redis()).hgetall(KEY)
    return {tuple(name.decode().split(SEPARATOR)): float(value) for name, value in raw.items()}
