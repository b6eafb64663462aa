"""The Celery baseline: the same two jobs on a Redis broker, results ignored."""

import os

from celery import Celery

from bench import tasks

app = Celery("bench", broker=os.environ["BENCH_CELERY_BROKER"])
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
app.conf.task_default_queue = "bench"

count = app.task(name="bench.count")(tasks.count)
stamp = app.task(name="bench.stamp")(tasks.stamp)
