"""The platform's counters, kept in Redis so that every worker process adds to the same ones.

One hash (HINCRBY). An attempt's counters ride in RQ's last pipeline of its job when a
ConveyorWorker runs it (`ride_along`, `send_along`: no round trip of their own), else go
in one round trip when it ends; a rate-limit wait rides in the pipeline that defers its job. A process that restarts loses nothing; a
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

# The attribute of a running rq Job (in memory, never saved) that holds its attempt's counters
# until the worker sends them with the job's last pipeline.
RIDING = "conveyor_counters"

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


def attempt_ended(kind, outcome, seconds, counts, job=None):
    """Count an ended attempt of a `kind` row, its duration (None: unknown, a lost one) and
    the counters its steps added (`counts`): with `job`'s last pipeline when its worker
    sends them along, else in a round trip of their own."""
    increments = {field("attempts", kind, outcome): 1, **counts}
    if seconds is not None:
        increments[field("duration_bucket", kind, outcome, bucket_of(seconds))] = 1
        increments[field("duration_sum", kind, outcome)] = float(seconds)
    riding = getattr(job, RIDING, None)
    if riding is None:
        add(increments)
        return
    for name, amount in increments.items():
        riding[name] = riding.get(name, 0) + amount


def ride_along(job):
    """The worker will send this job's counters with its last pipeline (send_along)."""
    setattr(job, RIDING, {})


def send_along(job, pipeline):
    """Add the job's counters to RQ's last pipeline of the job. Not emptied: RQ may build that
    pipeline again (a WATCH conflict), and only the one it executes counts."""
    add(getattr(job, RIDING, None) or {}, pipeline)


def add(counts, pipeline=None):
    """Add `counts` ({field: amount}, floats too); in `pipeline` when given, else in a round
    trip of their own."""
    if pipeline is not None:
        for name, amount in counts.items():
            if isinstance(amount, float):
                pipeline.hincrbyfloat(KEY, name, amount)
            else:
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
