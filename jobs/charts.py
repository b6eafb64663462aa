"""The figures behind the queue charts, kept in Redis so that they survive a page reload,
a worker restart and a web restart, and trimmed there by their own expiry.

- **Jobs ended**: a worker counts each job end (finished, failed, or failed and retried)
  in a per-minute hash, inside the pipeline that records the job's end: one more command,
  no extra round trip. The day's chart sums each hour's 60 minute buckets when drawn (one
  pipelined read of 1,440 small hashes), rather than every job end paying a second count.
  Minute buckets live 26 hours: EXPIREAT from the bucket's start (so it never slides),
  sent by each process with its first count in a bucket, and again by every sample (a
  bucket that lost its expiry to a FLUSHALL gets it back).
- **Backlog and oldest queued job**: sampled every CHARTS_SAMPLE_INTERVAL seconds by the
  maintenance job `jobs.jobs.sample_queues` into one sorted set per queue (scored by time,
  trimmed to a day); the charts add a live sample for "now".
"""

import time
from dataclasses import dataclass

from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.utils import utcparse

from .connection import get_redis, key
from .policies import all_policies
from .queueing import get_queue

OUTCOMES = ("finished", "retried", "failed")
SAMPLES_KEPT_SECONDS = 25 * 3600
# The oldest job is looked for among the first jobs of the list: RQ appends at the tail,
# but a job that jumped the queue (at_front) or was put back sits at the head.
OLDEST_LOOKAHEAD = 10


@dataclass(frozen=True)
class Span:
    """A chart's time axis: `count` buckets of `seconds`, the last one holding now."""

    name: str
    seconds: int
    count: int

    def starts(self, now):
        current = self.start_of(now)
        return [current - self.seconds * back for back in range(self.count - 1, -1, -1)]

    def start_of(self, at):
        return int(at // self.seconds * self.seconds)

    def counts_key(self, start):
        return key("charts", self.name, start)


MINUTES = Span("minute", 60, 60)
HOURS = Span("hour", 3600, 24)
# A minute bucket serves the day's chart too: kept a day and two hours.
MINUTE_BUCKETS_KEPT = 26 * 3600
SPANS = {"hour": MINUTES, "day": HOURS}
MINUTES_PER_HOUR = HOURS.seconds // MINUTES.seconds


# --- jobs ended: written by the worker ------------------------------------------------------


# The minute bucket this process has already given its expiry.
_expiring = {}


def count_job_end(pipeline, queue_name, outcome, at=None):
    """Count one job end in its minute, inside the caller's pipeline."""
    at = time.time() if at is None else at
    start = MINUTES.start_of(at)
    bucket = MINUTES.counts_key(start)
    pipeline.hincrby(bucket, f"{queue_name}:{outcome}", 1)
    if _expiring.get(MINUTES.name) != start:
        pipeline.expireat(bucket, start + MINUTE_BUCKETS_KEPT)
        _expiring[MINUTES.name] = start


def expire_current_buckets(pipeline, now):
    """The expiry of this and the last minute bucket, again (a no-op on a missing key)."""
    for start in MINUTES.starts(now)[-2:]:
        pipeline.expireat(MINUTES.counts_key(start), start + MINUTE_BUCKETS_KEPT)


def jobs_ended(span, now=None, connection=None):
    """{queue: [(bucket start, {outcome: count})]} over the span, oldest bucket first: for
    the hour span, its minute buckets; for the day, each hour's minute buckets summed."""
    now = time.time() if now is None else now
    starts = span.starts(now)
    minutes = [minutes_of(span, start) for start in starts]
    with (connection or get_redis()).pipeline(transaction=False) as pipe:
        for minute in (minute for group in minutes for minute in group):
            pipe.hgetall(MINUTES.counts_key(minute))
        replies = iter(pipe.execute())
    buckets = [[next(replies) for _ in group] for group in minutes]
    return {name: [(start, summed(bucket, name)) for start, bucket in zip(starts, buckets)] for name in all_policies()}


def minutes_of(span, start):
    if span is MINUTES:
        return [start]
    return [start + MINUTES.seconds * index for index in range(MINUTES_PER_HOUR)]


def summed(minute_buckets, queue_name):
    return {
        outcome: sum(int(bucket.get(f"{queue_name}:{outcome}".encode(), 0)) for bucket in minute_buckets)
        for outcome in OUTCOMES
    }


# --- backlog and oldest queued job: sampled ------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float
    queued: int
    scheduled: int
    oldest_age: float  # seconds the oldest queued job has waited; 0 when none waits

    def encode(self):
        return f"{self.at:.3f}:{self.queued}:{self.scheduled}:{self.oldest_age:.1f}"

    @classmethod
    def decode(cls, raw):
        at, queued, scheduled, oldest = raw.decode().split(":")
        return cls(float(at), int(queued), int(scheduled), float(oldest))


def samples_key(queue_name):
    return key("charts", "samples", queue_name)


def measure_queues(now=None, connection=None):
    """{queue: Sample} of every queue now, in two round trips."""
    connection = connection or get_redis()
    now = time.time() if now is None else now
    queues = [get_queue(name, connection) for name in all_policies()]
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.zcard(ScheduledJobRegistry(queue=queue).key)
            pipe.lrange(queue.key, 0, OLDEST_LOOKAHEAD - 1)
        replies = pipe.execute()
    heads = {queue.name: [job_id.decode() for job_id in replies[3 * i + 2]] for i, queue in enumerate(queues)}
    enqueued = enqueued_times(heads, connection)
    return {
        queue.name: Sample(now, replies[3 * i], replies[3 * i + 1], oldest_age(enqueued[queue.name], now))
        for i, queue in enumerate(queues)
    }


def enqueued_times(heads, connection):
    """{queue: [enqueued_at as a timestamp]} of the given job ids (a job gone meanwhile: none)."""
    with connection.pipeline(transaction=False) as pipe:
        for job_ids in heads.values():
            for job_id in job_ids:
                pipe.hget(Job.key_for(job_id), "enqueued_at")
        replies = iter(pipe.execute())
    return {
        name: [utcparse(raw.decode()).timestamp() for raw in (next(replies) for _ in job_ids) if raw]
        for name, job_ids in heads.items()
    }


def oldest_age(enqueued, now):
    return max(0.0, now - min(enqueued)) if enqueued else 0.0


def sample_queues(now=None, connection=None):
    """Record every queue's backlog and oldest queued job now; drop samples over a day old."""
    connection = connection or get_redis()
    samples = measure_queues(now, connection)
    with connection.pipeline(transaction=False) as pipe:
        for name, sample in samples.items():
            pipe.zadd(samples_key(name), {sample.encode(): sample.at})
            pipe.zremrangebyscore(samples_key(name), "-inf", sample.at - SAMPLES_KEPT_SECONDS)
        expire_current_buckets(pipe, time.time() if now is None else now)
        pipe.execute()
    return samples


def recorded_samples(span, now=None, connection=None):
    """{queue: [Sample]} recorded within the span, oldest first, with a live sample for now."""
    connection = connection or get_redis()
    now = time.time() if now is None else now
    since = span.starts(now)[0]
    names = list(all_policies())
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zrangebyscore(samples_key(name), since, "+inf")
        replies = pipe.execute()
    live = measure_queues(now, connection)
    return {name: [*map(Sample.decode, raw), live[name]] for name, raw in zip(names, replies)}
