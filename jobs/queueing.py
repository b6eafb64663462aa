"""Enqueue through the policy table: the only way apps put work on a queue."""

import logging
import time
import uuid
from datetime import timedelta
from functools import partial

import redis
from django.db import transaction
from rq import Queue, Retry
from rq.exceptions import DequeueTimeout
from rq.serializers import DefaultSerializer

from . import pausing
from .connection import get_redis, key
from .policies import policy_for

log = logging.getLogger(__name__)


class ConveyorQueue(Queue):
    """RQ's queue, plus: due times never early, paused queues not dequeued, and no job
    dependencies (the worker records a finished job's end without reading its dependents:
    jobs/job_records.py; the platform chains work through its rows instead)."""

    def __init__(self, *args, serializer=None, **kwargs):
        # RQ builds a queue object per dequeued job and checks a serializer it is given
        # against a runtime Protocol (4% of a no-op job's CPU); None is the same default.
        if serializer is DefaultSerializer:
            serializer = None
        super().__init__(*args, serializer=serializer, **kwargs)

    def create_job(self, *args, depends_on=None, **kwargs):
        if depends_on:
            raise ValueError("Conveyor's queues do not take RQ job dependencies (depends_on)")
        return super().create_job(*args, **kwargs)

    def schedule_job(self, job, datetime, *args, **kwargs):
        # RQ stores the due time in whole seconds, truncated: a 2 s retry delay could
        # start after 1.01 s. Rounding up means a job never runs before its delay.
        if datetime.microsecond:
            datetime = datetime.replace(microsecond=0) + timedelta(seconds=1)
        return super().schedule_job(job, datetime, *args, **kwargs)

    @classmethod
    def dequeue_any(cls, queues, timeout, connection, *args, **kwargs):
        paused = pausing.paused_queue_names(connection)
        active = [queue for queue in queues if queue.name not in paused]
        if not active:
            if timeout is None:
                return None
            time.sleep(min(timeout, 1))
            raise DequeueTimeout(timeout, [queue.key for queue in queues])
        if timeout is not None:
            # Wake up now and then so that a pause or resume takes effect promptly.
            timeout = min(timeout, 2)
        return super().dequeue_any(active, timeout, connection, *args, **kwargs)


def get_queue(name, connection=None):
    policy = policy_for(name)
    return ConveyorQueue(name, connection=connection or get_redis(), default_timeout=policy.timeout)


def job_options(policy, *, job_id, rate_key, rate_limited, description):
    options = {
        "job_id": job_id,
        "job_timeout": policy.timeout,
        "result_ttl": policy.finished_ttl,
        "failure_ttl": policy.failed_ttl,
        "meta": {"rate_key": rate_key, "rate_limited": rate_limited},
        "description": description,
    }
    if policy.retry_delays:
        options["retry"] = Retry(max=policy.max_retries, interval=list(policy.retry_delays))
    return options


def claim_dedupe_key(queue_name, dedupe_key, job_id, window):
    """True if no job with this key was enqueued on this queue within the window."""
    return bool(get_redis().set(key("dedupe", queue_name, dedupe_key), job_id, nx=True, ex=window))


def enqueue(
    func,
    *args,
    queue,
    job_id=None,
    delay=None,
    at_front=False,
    rate_key=None,
    rate_limited=True,
    dedupe_key=None,
    description=None,
):
    """Put func(*args) on `queue` with that queue's retries, retention and timeout.

    The job is pushed once the current transaction commits, so it never runs before its
    row exists. Returns the job id, chosen now so the caller can store it on its row, or
    None when `dedupe_key` was already used on this queue within the policy's window.
    A push that fails after commit is logged and left to the reconciler, never raised:
    the row is committed and will be enqueued again from the database.
    """
    policy = policy_for(queue)
    job_id = job_id or uuid.uuid4().hex
    if dedupe_key and policy.dedupe_window and not claim_dedupe_key(queue, dedupe_key, job_id, policy.dedupe_window):
        log.info("dedupe: %s on %s already enqueued within %ss", dedupe_key, queue, policy.dedupe_window)
        return None
    options = job_options(policy, job_id=job_id, rate_key=rate_key, rate_limited=rate_limited, description=description)
    push = partial(_push, queue, func, args, options, delay, at_front)
    transaction.on_commit(push, robust=True)
    return job_id


def enqueue_many(func, calls, *, queue):
    """Enqueue func once per (args, options) in `calls`, pushed in one Redis round trip on
    commit. `options` may hold rate_key and description. Returns the job ids, in order."""
    policy = policy_for(queue)
    prepared, job_ids = [], []
    for args, options in calls:
        job_id = uuid.uuid4().hex
        job_ids.append(job_id)
        prepared.append((args, job_options(policy, job_id=job_id, rate_limited=True, **rate_and_description(options))))
    transaction.on_commit(partial(_push_many, queue, func, prepared), robust=True)
    return job_ids


def rate_and_description(options):
    return {"rate_key": options.get("rate_key"), "description": options.get("description")}


def _push_many(queue_name, func, prepared):
    queue = get_queue(queue_name)
    data = [
        Queue.prepare_data(
            func,
            args,
            job_id=options["job_id"],
            timeout=options["job_timeout"],
            result_ttl=options["result_ttl"],
            failure_ttl=options["failure_ttl"],
            meta=options["meta"],
            description=options["description"],
            retry=options.get("retry"),
        )
        for args, options in prepared
    ]
    try:
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many(data, pipeline=pipe)
            pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError):
        log.warning("%s jobs not pushed to %s (Redis unavailable): the reconciler will retry", len(data), queue_name)


def _push(queue_name, func, args, options, delay, at_front):
    queue = get_queue(queue_name)
    try:
        # In one pipeline: without one, RQ registers the queue in a round trip of its own.
        with queue.connection.pipeline() as pipe:
            if delay:
                queue.enqueue_in(timedelta(seconds=delay), func, *args, pipeline=pipe, **options)
            else:
                queue.enqueue(func, *args, at_front=at_front, pipeline=pipe, **options)
            pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError):
        log.warning(
            "job %s not pushed to %s (Redis unavailable): the reconciler will retry", options["job_id"], queue_name
        )
