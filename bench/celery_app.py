"""The Celery baseline: the same jobs on a Redis broker (the bench's Redis, database 1).

Two configurations, chosen by the worker's environment:

- default (BENCH_CELERY_STRICT unset): what Celery users run for fire-and-forget jobs:
  the message is acknowledged when a child receives it, four messages prefetched per
  child, no result stored;
- strict (BENCH_CELERY_STRICT=1): the bookkeeping RQ always does: acknowledged only once
  the job ran (a killed worker loses nothing), one message per child at a time like an
  RQ worker, and the result stored in Redis (RQ keeps its job and result for result_ttl).

The bench process only sends messages: it has no result backend, so sending never
subscribes to results; each message says whether the worker stores one.
"""

import os

from celery import Celery

from bench import tasks

STRICT = bool(os.environ.get("BENCH_CELERY_STRICT"))

app = Celery("bench", broker=os.environ["BENCH_CELERY_BROKER"])
app.conf.update(
    task_default_queue="bench",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    task_ignore_result=not STRICT,
    task_acks_late=STRICT,
    worker_prefetch_multiplier=1 if STRICT else 4,
    result_backend=os.environ["BENCH_CELERY_BROKER"] if STRICT else None,
    result_expires=500,  # RQ's default result_ttl
)

hold = app.task(name="bench.hold")(tasks.hold)
count = app.task(name="bench.count")(tasks.count)
stamp = app.task(name="bench.stamp")(tasks.stamp)
