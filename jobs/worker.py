"""The worker every Conveyor process runs: RQ's SimpleWorker plus the platform's policies.

Why SimpleWorker: RQ's default Worker forks a work horse per job (~36 jobs/s here); a
pool of SimpleWorker processes runs jobs in-process at hundreds per second and still
enforces job timeouts (SIGALRM death penalty in the main thread). What it adds:

- a paused queue is not dequeued (ConveyorQueue), and a job popped just as its queue was
  paused goes back to the front;
- a job over its queue's start-rate limit waits in the scheduled registry until a slot
  frees: it is neither failed nor charged a retry;
- Django's database connections are checked before and after each job, as Django does
  around a request, so a connection dropped by the server never breaks the next job;
- a liveness key refreshed by a thread while jobs run, which the reconciler reads to tell
  a busy worker from a dead one in seconds (RQ's own worker key lives for minutes);
- SIGTERM lets the running job finish for WORKER_SHUTDOWN_GRACE seconds, then interrupts
  it (it is retried like any failure) and exits.
"""

import logging
import os
import signal
import threading
import time
from datetime import timedelta

import redis
from django.conf import settings
from django.db import close_old_connections
from rq import SimpleWorker
from rq.exceptions import ShutDownImminentException
from rq.intermediate_queue import IntermediateQueue
from rq.utils import now

from . import pausing, ratelimit
from .connection import key
from .policies import all_policies
from .queueing import ConveyorQueue

log = logging.getLogger("conveyor.worker")

GRACE_SIGNAL = signal.SIGUSR1


LIVE_WORKERS_KEY = key("workers-alive")


def count_live_workers(connection):
    """Workers whose last heartbeat promised they are alive now (the gone ones are dropped)."""
    now = time.time()
    with connection.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(LIVE_WORKERS_KEY, "-inf", now)
        pipe.zcard(LIVE_WORKERS_KEY)
        return pipe.execute()[1]


def alive_key(worker_name):
    return key("worker-alive", worker_name)


class ConveyorWorker(SimpleWorker):
    max_connection_wait_time = 5.0
    _plain_heartbeat_at = 0.0
    _suspension_checked_at = 0.0

    def __init__(self, queues, *args, **kwargs):
        kwargs.setdefault("queue_class", ConveyorQueue)
        kwargs.setdefault("log_job_description", False)
        super().__init__(queues, *args, **kwargs)
        self._liveness_stop = threading.Event()
        self._liveness = threading.Thread(target=self._keep_alive, name="conveyor-liveness", daemon=True)
        self._grace_timer = None

    # --- lifecycle -----------------------------------------------------------------------

    def work(self, *args, **kwargs):
        try:
            return super().work(*args, **kwargs)
        finally:
            self._liveness_stop.set()
            if self._grace_timer:
                self._grace_timer.cancel()
            if self._liveness.is_alive():
                self._liveness.join(timeout=5)  # its last write must not land after the delete
            self._forget_liveness()

    def _keep_alive(self):
        while not self._liveness_stop.is_set():
            try:
                with self.connection.pipeline(transaction=False) as pipe:
                    pipe.set(alive_key(self.name), os.getpid(), ex=settings.WORKER_ALIVE_TTL)
                    # The same promise in one sorted set, scored by its expiry, so that /health
                    # counts live workers with one command instead of scanning every key.
                    pipe.zadd(LIVE_WORKERS_KEY, {self.name: time.time() + settings.WORKER_ALIVE_TTL})
                    pipe.execute()
            except redis.RedisError:
                pass  # Redis is down: the dequeue loop logs it and reconnects.
            self._liveness_stop.wait(settings.WORKER_HEARTBEAT)

    def _forget_liveness(self):
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.delete(alive_key(self.name))
                pipe.zrem(LIVE_WORKERS_KEY, self.name)
                pipe.execute()
        except redis.RedisError:
            pass

    def _install_signal_handlers(self):
        super()._install_signal_handlers()
        signal.signal(GRACE_SIGNAL, self._interrupt_job)
        # Alive from here on: a stop signal now goes through the graceful path.
        self._liveness.start()

    def handle_warm_shutdown_request(self):
        super().handle_warm_shutdown_request()
        if self._grace_timer is None:
            grace = settings.WORKER_SHUTDOWN_GRACE
            self._grace_timer = threading.Timer(grace, os.kill, args=(os.getpid(), GRACE_SIGNAL))
            self._grace_timer.daemon = True
            self._grace_timer.start()

    def _interrupt_job(self, signum, frame):
        if self.get_state() == "busy":
            log.warning("worker %s: job still running after the shutdown grace, interrupting it", self.name)
            raise ShutDownImminentException("shutdown grace period over")

    def heartbeat(self, timeout=None, pipeline=None):
        # RQ sends a plain heartbeat (three round trips) three times per job; its worker
        # key lives for minutes, and the liveness thread reports us every few seconds, so
        # one plain heartbeat per WORKER_HEARTBEAT is plenty. Heartbeats that extend the
        # TTL for a job, or ride in a pipeline, always go through.
        if timeout is None and pipeline is None:
            if time.monotonic() - self._plain_heartbeat_at < settings.WORKER_HEARTBEAT:
                return
            self._plain_heartbeat_at = time.monotonic()
        super().heartbeat(timeout, pipeline)

    def check_for_suspension(self, burst):
        # `rq suspend` is an operator's command: noticing it within a second is enough,
        # and checking before every job costs a round trip per job.
        if time.monotonic() - self._suspension_checked_at < 1.0:
            return
        self._suspension_checked_at = time.monotonic()
        super().check_for_suspension(burst)

    def set_state(self, state, pipeline=None):
        # RQ records "idle" twice between two jobs; once is enough (one round trip less).
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)

    # --- one job -------------------------------------------------------------------------

    def execute_job(self, job, queue):
        if queue.name in pausing.paused_queue_names(self.connection):
            self._put_back(job, queue)
            return
        wait = self._rate_limit_wait(job, queue)
        if wait:
            self._defer(job, queue, wait)
            return
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()

    def _rate_limit_wait(self, job, queue):
        policy = all_policies().get(queue.name)
        if policy is None or policy.rate_limit is None or not job.meta.get("rate_limited", True):
            return 0.0
        log_key = ratelimit.limiter_key(queue.name, job.meta.get("rate_key"))
        return ratelimit.acquire(policy.rate_limit, log_key, f"{job.id}:{now().timestamp()}", self.connection)

    def _defer(self, job, queue, wait):
        """Park the job until its slot frees: scheduled, not failed, no retry used."""
        log.info("job %s on %s rate-limited: starts again in %.1fs", job.id, queue.name, wait)
        with self.connection.pipeline() as pipe:
            queue.schedule_job(job, now() + timedelta(seconds=wait), pipeline=pipe)
            self._forget_dequeue(job, queue, pipe)
            pipe.execute()

    def _put_back(self, job, queue):
        """Return a job popped from a queue that was paused meanwhile to the queue's front."""
        with self.connection.pipeline() as pipe:
            queue.push_job_id(job.id, pipeline=pipe, at_front=True)
            self._forget_dequeue(job, queue, pipe)
            pipe.execute()

    @staticmethod
    def _forget_dequeue(job, queue, pipe):
        # A worker on one queue pops with LMOVE into an intermediate list that RQ fails
        # jobs out of after a minute unless they started; this one did not start.
        pipe.lrem(IntermediateQueue.get_intermediate_queue_key(queue.key), 1, job.id)
