"""The worker every Conveyor process runs: RQ's SimpleWorker plus the platform's policies.

`manage.py rqworker` and `rqworker-pool` run it (settings.RQ["WORKER_CLASS"]).

Why SimpleWorker: RQ's default Worker forks a work horse per job (~36 jobs/s here); a
pool of SimpleWorker processes runs jobs in-process at hundreds per second and still
enforces job timeouts (SIGALRM death penalty in the main thread). What it adds:

- its queues are always ConveyorQueue, whatever it is given (rq's WorkerPool builds plain
  rq.Queue objects): a paused queue is not dequeued, and a job popped just as its queue
  was paused goes back to the front;
- a job starts only within its queue's concurrency cap and start-rate limit, both checked
  in one Lua script (jobs/concurrency.py). Over the cap, it goes back to the front of its
  queue and this worker leaves that queue alone for a moment; over the rate limit, it waits
  in the scheduled registry until a slot frees. Neither fails it or uses a retry;
- Django's database connections are checked before and after each job, as Django does
  around a request, so a connection dropped by the server never breaks the next job;
- a liveness thread beats every WORKER_HEARTBEAT seconds while jobs run: a liveness key the
  reconciler reads to tell a busy worker from a dead one in seconds (RQ's own worker key
  lives for minutes), the running job's concurrency lease, the worker's registration again
  when Redis lost it (FLUSHALL), its RQ scheduler process started again when it died, and
  the watchdog of overdue scheduled jobs (jobs/watchdog.py), one worker at a time;
- each job end is counted for the queue charts (jobs/charts.py) in the pipeline that
  records it;
- RQ's records of a job's start and end are written in fewer commands and round trips
  (jobs/job_records.py): the start by the script that grants it, a finished job's end in
  one transaction with the worker's statistics and state in one HSET;
- SIGTERM lets the running job finish for WORKER_SHUTDOWN_GRACE seconds, then interrupts
  it (it is retried like any failure) and exits.
"""

import logging
import os
import signal
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

import redis
from django.conf import settings
from django.db import close_old_connections
from rq import SimpleWorker, worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import ShutDownImminentException
from rq.executions import Execution
from rq.intermediate_queue import IntermediateQueue
from rq.queue import Queue
from rq.rate_limit import release_slot
from rq.scheduler import RQScheduler
from rq.utils import now
from rq.worker import WorkerStatus

from . import charts, concurrency, job_records, metrics, pausing, watchdog
from .connection import key
from .policies import all_policies
from .queueing import ConveyorQueue

log = logging.getLogger("conveyor.worker")

GRACE_SIGNAL = signal.SIGUSR1
# A worker that found a queue at its concurrency cap leaves that queue alone this long.
CAP_RECHECK_SECONDS = 1.0

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


def unseen_key(job_id):
    """When the reconciler first missed a queued job in its queue (a worker
    may have popped it and died): a job put back to its queue drops it."""
    return key("unseen", job_id)


def as_conveyor_queues(queues):
    """The platform's queue class for every queue, whatever RQ or django-rq built (names
    stay names: RQ builds them with the worker's queue class)."""
    if isinstance(queues, (str, Queue)):
        queues = [queues]
    return [queue if isinstance(queue, (str, ConveyorQueue)) else as_conveyor_queue(queue) for queue in queues]


def as_conveyor_queue(queue):
    return ConveyorQueue(
        queue.name, connection=queue.connection, job_class=queue.job_class, serializer=queue.serializer
    )


def rq_log_level(requested):
    """RQ's log level: settings.RQ_LOG_LEVEL, unless DEBUG is asked for (`-v 2`)."""
    if requested in ("DEBUG", logging.DEBUG):
        return "DEBUG"
    return settings.RQ_LOG_LEVEL


class WorkerScheduler(RQScheduler):
    """RQ's scheduler process, which stops when the worker that started it is gone: a
    SIGKILLed worker must not leave an orphan holding the scheduler locks for good. It gives
    them back as it stops, and a live worker's heartbeat finds them free and takes them."""

    def start(self):
        self._worker_pid = os.getpid()  # runs in the worker; the forked process inherits it
        return super().start()

    def heartbeat(self):
        if os.getppid() != self._worker_pid and not self._stop_requested:
            self.log.warning("scheduler %s: its worker (pid %s) is gone: stopping", self.name, self._worker_pid)
            self.request_stop()
        super().heartbeat()


class ConveyorWorker(SimpleWorker):
    max_connection_wait_time = 5.0
    _plain_heartbeat_at = 0.0
    _suspension_checked_at = 0.0
    _idle_sent = False
    _ending = None  # (queue name, outcome) of the job whose end RQ is recording
    # The running execution, when its start was recorded by the start script (job_records).
    _recorded = None

    def __init__(self, queues, *args, **kwargs):
        kwargs["queue_class"] = ConveyorQueue
        kwargs.setdefault("log_job_description", False)
        self._held_until = {}
        super().__init__(as_conveyor_queues(queues), *args, **kwargs)
        # The host the dashboard shows: containers often have random host names.
        self.hostname = settings.WORKER_HOSTNAME or self.hostname
        # Inside a pool serving several queues, each queue leaves a process to the others.
        self._pool = concurrency.current_pool() if len(self.queues) > 1 else None
        self._lease = None
        self._lease_release_sent = False
        # Held while the liveness thread refreshes the running job's lease, and while the
        # main thread sends or marks its release: a refresh takes a lost lease again, so it
        # must never land after the release (the slot would stay taken until it expired).
        self._lease_guard = threading.Lock()
        self._liveness_stop = threading.Event()
        self._liveness = threading.Thread(target=self._keep_alive, name="conveyor-liveness", daemon=True)
        self._grace_timer = None
        # Held while the RQ scheduler process is started or stopped, by any thread.
        self._scheduler_guard = threading.RLock()
        self._scheduler_wanted = False

    # --- lifecycle -----------------------------------------------------------------------

    def work(self, burst=False, logging_level=None, *args, **kwargs):
        try:
            return super().work(burst, rq_log_level(logging_level), *args, **kwargs)
        finally:
            if self._grace_timer:
                self._grace_timer.cancel()
            self._stop_liveness()
            self._forget_liveness()

    def teardown(self):
        # The heartbeat must not register the worker again once it says goodbye.
        self._stop_liveness()
        super().teardown()

    def _stop_liveness(self):
        self._liveness_stop.set()
        if self._liveness.is_alive() and self._liveness is not threading.current_thread():
            self._liveness.join(timeout=5)  # its last write must not land after the delete

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

    # --- liveness: one pipeline per heartbeat ----------------------------------------------

    def _keep_alive(self):
        while not self._liveness_stop.is_set():
            try:
                self._beat()
            except redis.RedisError:
                pass  # Redis is down: the dequeue loop logs it and reconnects.
            except Exception:
                log.exception("worker %s: heartbeat failed", self.name)
            self._liveness_stop.wait(settings.WORKER_HEARTBEAT)

    def _beat(self):
        scheduler_locks = self._scheduler_locks_to_watch()
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.set(alive_key(self.name), os.getpid(), ex=settings.WORKER_ALIVE_TTL)
            # The same promise in one sorted set, scored by its expiry, so that /health
            # counts live workers with one command instead of scanning every key.
            pipe.zadd(LIVE_WORKERS_KEY, {self.name: time.time() + settings.WORKER_ALIVE_TTL})
            # RQ's own heartbeat (below) recreates a flushed hash with its last_heartbeat only.
            pipe.hexists(self.key, "birth")
            watchdog.take_turn(pipe, self.name, settings.WORKER_HEARTBEAT)
            # RQ's worker key and executions index, kept alive here rather than by every job
            # start: a long job blocks the main thread, not this one.
            self.heartbeat(pipeline=pipe)
            if scheduler_locks:
                pipe.mget(scheduler_locks)
            replies = pipe.execute()
        registered, watching = replies[2], replies[3]
        if not registered and not self._liveness_stop.is_set():
            self._register_again()
        self._refresh_lease()
        if watching:
            watchdog.promote_overdue(self.connection)
            watchdog.forget_dead_workers(self.connection, LIVE_WORKERS_KEY)
        self._look_after_scheduler(lock_free=bool(scheduler_locks) and None in replies[-1])

    def _refresh_lease(self):
        """Push the running job's lease back; take it again if Redis lost it. A round trip of
        its own, once a heartbeat and only while a job holds a lease, so that the guard is
        held for this one command and not for the whole heartbeat."""
        with self._lease_guard:
            lease = None if self._lease_release_sent else self._lease
            if lease is not None and lease.refresh(self.connection):
                log.warning(
                    "worker %s: Redis lost the lease of job %s (flushed?): taken again", self.name, lease.member
                )

    def _register_again(self):
        """Write the worker's hash and queue memberships again, as RQ does once at birth, so
        that the dashboard lists it after Redis lost its data."""
        log.warning("worker %s: Redis lost its registration (flushed?): registering again", self.name)
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def _forget_liveness(self):
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.delete(alive_key(self.name))
                pipe.zrem(LIVE_WORKERS_KEY, self.name)
                pipe.execute()
        except redis.RedisError:
            pass

    # --- the RQ scheduler process: kept running ---------------------------------------------

    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=None, log_format=None):
        # RQ's own, with WorkerScheduler for RQScheduler.
        with self._scheduler_guard:
            self._scheduler_wanted = not burst
            self.scheduler = WorkerScheduler(
                self.queues,
                connection=self.connection,
                logging_level=logging_level if logging_level is not None else self.log.level,
                date_format=date_format or DEFAULT_LOGGING_DATE_FORMAT,
                log_format=log_format or DEFAULT_LOGGING_FORMAT,
                serializer=self.serializer,
            )
            self.scheduler.acquire_locks()
            if not self.scheduler.acquired_locks:
                return
            if not burst:
                self.scheduler.start()
                return
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()

    def stop_scheduler(self):
        with self._scheduler_guard:
            self._scheduler_wanted = False
        super().stop_scheduler()

    def run_maintenance_tasks(self):
        # RQ's maintenance may start the scheduler process too: never both at once.
        with self._scheduler_guard:
            super().run_maintenance_tasks()

    def _scheduler_running(self):
        process = self.scheduler._process if self.scheduler else None
        return process is not None and process.is_alive()

    def _scheduler_locks_to_watch(self):
        """The scheduler locks of our queues, when we run no scheduler and could take one."""
        if not self._scheduler_wanted or self.scheduler is None or self._scheduler_running():
            return []
        return [self.scheduler.get_locking_key(name) for name in sorted(self.scheduler._queue_names)]

    def _look_after_scheduler(self, lock_free):
        """Start our scheduler process again if it died, or at all when a lock is free."""
        if not self._scheduler_guard.acquire(blocking=False):
            return  # maintenance or a stop is under way: next heartbeat
        try:
            if not self._scheduler_wanted or self._stop_requested or self._scheduler_running():
                return
            process = self.scheduler._process
            if process is not None:
                log.warning("worker %s: its scheduler process %s died: starting it again", self.name, process.pid)
                self.scheduler._process = None
            elif not lock_free:
                return
            self.scheduler.acquire_locks(auto_start=True)
        finally:
            self._scheduler_guard.release()

    # --- RQ's own round trips, fewer -------------------------------------------------------

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
        # RQ records "idle" twice between two jobs, each in a round trip of its own; once is
        # enough, and cleanup_execution already sent it in the job's last pipeline.
        idle_sent, self._idle_sent = self._idle_sent, False
        if pipeline is None and (state == self._state or (state == WorkerStatus.IDLE and idle_sent)):
            self._state = state
            return
        super().set_state(state, pipeline)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        # RQ writes the job's last_heartbeat here in a round trip of its own; the pipeline that
        # records the job's outcome follows at once and saves the job with it.
        job.ended_at = job.last_heartbeat = now()

    # --- job ends counted for the charts, in RQ's own last pipeline ------------------------

    def handle_job_failure(self, job, queue, *args, **kwargs):
        # Decided here: by the time RQ counts the failure it has forgotten a stop request.
        retried = job.should_retry and self._stopped_job_id != job.id
        with self._counting_end(job, "retried" if retried else "failed"):
            return super().handle_job_failure(job, queue, *args, **kwargs)

    def handle_job_retry(self, job, queue, retry, *args, **kwargs):
        exhausted = bool(job.number_of_retries and job.number_of_retries >= retry.max)
        with self._counting_end(job, "failed" if exhausted else "retried"):
            return super().handle_job_retry(job, queue, retry, *args, **kwargs)

    @contextmanager
    def _counting_end(self, job, outcome):
        self._ending = (job.origin, outcome)
        try:
            yield
        finally:
            self._ending = None

    # The worker's statistics: this process alone writes its hash, so it keeps them in memory
    # and writes their values (RQ: a HINCRBY or HINCRBYFLOAT each). They also ride with the
    # worker's "idle" (cleanup_execution), which is all a finished job's end writes of them.

    def increment_successful_job_count(self, pipeline=None):
        self.successful_job_count += 1
        self._write_statistics(pipeline)
        self._count_end(pipeline)

    def increment_failed_job_count(self, pipeline=None):
        self.failed_job_count += 1
        self._write_statistics(pipeline)
        self._count_end(pipeline)

    def increment_total_working_time(self, job_execution_time, pipeline):
        self.total_working_time += job_execution_time.total_seconds()
        self._write_statistics(pipeline)

    def _statistics(self):
        return {
            "successful_job_count": self.successful_job_count,
            "failed_job_count": self.failed_job_count,
            "total_working_time": self.total_working_time,
        }

    def _write_statistics(self, pipeline):
        (pipeline if pipeline is not None else self.connection).hset(self.key, mapping=self._statistics())

    def _count_end(self, pipeline):
        if self._ending is not None:
            queue_name, outcome = self._ending
            charts.count_job_end(pipeline if pipeline is not None else self.connection, queue_name, outcome)

    # --- which queues to dequeue -----------------------------------------------------------

    @property
    def _ordered_queues(self):
        """RQ dequeues from these: our queues, less those found at their cap a moment ago."""
        if not self._held_until:
            return self._queues_in_order
        moment = time.monotonic()
        self._held_until = {name: until for name, until in self._held_until.items() if until > moment}
        return [queue for queue in self._queues_in_order if queue.name not in self._held_until]

    @_ordered_queues.setter
    def _ordered_queues(self, queues):
        self._queues_in_order = queues

    @property
    def dequeue_timeout(self):
        # Wait on the other queues no longer than a held-back queue stays held back.
        return CAP_RECHECK_SECONDS if self._held_until else super().dequeue_timeout

    def _hold_back(self, queue):
        self._held_until[queue.name] = time.monotonic() + CAP_RECHECK_SECONDS

    # --- one job -------------------------------------------------------------------------

    def execute_job(self, job, queue):
        if queue.name in pausing.paused_queue_names(self.connection):
            self._put_back(job, queue)
            return
        execution = Execution(uuid.uuid4().hex, job.id, self.connection, worker_name=self.name)
        start = self._try_start(job, queue, execution)
        if start.over_cap:
            log.debug("job %s on %s waits: the queue is at its concurrency cap", job.id, queue.name)
            self._put_back(job, queue)
            self._hold_back(queue)
            return
        if start.rate_wait:
            self._defer(job, queue, start.rate_wait)
            return
        self._lease = start.lease
        if start.lease is not None:
            job_records.started(self, job, execution)
            self._recorded = execution
        metrics.ride_along(job)
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            self._recorded = None
            close_old_connections()
            self._end_lease()

    def _try_start(self, job, queue, execution):
        policy = all_policies().get(queue.name)
        if policy is None:
            return concurrency.Start()  # not a declared queue: no cap, no limit; RQ records the start
        return concurrency.try_start(
            self.connection,
            policy,
            job.id,
            pool=self._pool,
            rate_key=job.meta.get("rate_key"),
            rate_limited=job.meta.get("rate_limited", True),
            rate_member=f"{job.id}:{now().timestamp()}",
            record=job_records.start_keys_and_args(self, job, queue, execution),
        )

    def _recorded_start(self, job):
        """The execution of `job` whose start the start script recorded, else None."""
        recorded = self._recorded
        return recorded if recorded is not None and recorded.job_id == job.id else None

    def prepare_execution(self, job):
        # The start script already wrote the execution (execute_job).
        return self._recorded_start(job) or super().prepare_execution(job)

    def prepare_job_execution(self, job, remove_from_intermediate_queue=False):
        if self._recorded_start(job):
            self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")
            return
        # RQ pops with LMOVE into an intermediate list whenever the dequeue looks at one
        # queue, here also when pauses or caps leave one of several, but removes the job
        # from that list only for one-queue workers; left there, RQ's cleanup would fail
        # the finished job a minute later. Removing it is one command in RQ's pipeline.
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)

    def handle_job_success(self, job, queue, started_job_registry, execution):
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self._counting_end(job, "finished"):
            if self._recorded is not execution or result_ttl == 0 or job.repeats_left:
                return super().handle_job_success(job, queue, started_job_registry, execution)
            self._finish(job, queue, result_ttl, execution)
        release_slot(job)
        seconds = (job.ended_at - job.started_at).total_seconds()
        self.log.info("Worker %s: job %s finished in %.3fs", self.name, job.id, seconds)

    def _finish(self, job, queue, result_ttl, execution):
        """Record a finished job's end in one transaction (job_records); the statistics go
        with the worker's "idle" (cleanup_execution)."""
        self.successful_job_count += 1
        self.total_working_time += (job.ended_at - job.started_at).total_seconds()
        with self.connection.pipeline() as pipeline:
            self._count_end(pipeline)
            job_records.record_finish(pipeline, job, queue, result_ttl, self.name, execution)
            self.cleanup_execution(job, pipeline, execution)
            pipeline.execute()

    def cleanup_execution(self, job, pipeline, execution=None):
        # Every way a job ends passes here with RQ's last pipeline: the lease, the worker's
        # "idle" and the attempt's metrics ride along instead of taking round trips of their
        # own. Only in Redis: until the job's handling returns, a SIGTERM must still find the
        # worker busy.
        if execution is not None and execution is self._recorded:
            job_records.forget_execution(pipeline, job, self, execution)
        else:
            super().cleanup_execution(job, pipeline, execution)
        metrics.send_along(job, pipeline)
        with self._lease_guard:
            if self._lease is not None and self._lease.member == job.id:
                self._lease.release(pipeline)
                self._lease_release_sent = True
        pipeline.hset(self.key, mapping={"state": WorkerStatus.IDLE, **self._statistics()})
        self._idle_sent = True

    def _end_lease(self):
        with self._lease_guard:
            lease, self._lease = self._lease, None
            sent, self._lease_release_sent = self._lease_release_sent, False
        if lease is None or sent:
            return
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                lease.release(pipe)
                pipe.execute()
        except redis.RedisError:
            pass  # it expires by itself within WORKER_ALIVE_TTL

    def _defer(self, job, queue, wait):
        """Park the job until its slot frees: scheduled, not failed, no retry used."""
        log.info("job %s on %s rate-limited: starts again in %.1fs", job.id, queue.name, wait)
        with self.connection.pipeline() as pipe:
            queue.schedule_job(job, now() + timedelta(seconds=wait), pipeline=pipe)
            self._forget_dequeue(job, queue, pipe)
            metrics.rate_limit_wait(queue.name, pipe)
            pipe.execute()

    def _put_back(self, job, queue):
        """Return a job popped from a queue it may not start on now to the queue's front."""
        with self.connection.pipeline() as pipe:
            queue.push_job_id(job.id, pipeline=pipe, at_front=True)
            self._forget_dequeue(job, queue, pipe)
            pipe.execute()

    @staticmethod
    def _forget_dequeue(job, queue, pipe):
        # A worker on one queue pops with LMOVE into an intermediate list that RQ fails
        # jobs out of after a minute unless they started; this one did not start. Nor was
        # it stranded there: a job at its queue's cap goes back and forth, and a sighting
        # on an earlier trip must not count (RQ's cleanup, the reconciler's stranded jobs).
        popped = IntermediateQueue(queue.key, queue.connection)
        pipe.lrem(popped.key, 1, job.id)
        pipe.delete(popped.get_first_seen_key(job.id), unseen_key(job.id))
