"""The worker as a real process: signals, Redis outages, liveness."""

import os
import signal
import time

from rq.job import Job

from jobs.connection import get_redis
from jobs.queueing import enqueue
from tests import redis_server
from tests.conftest import scheduler_pid, wait_for
from tests.jobs import tasks


def test_sigterm_waits_for_the_running_job_then_exits(processes):
    job_id = enqueue(tasks.sleep_then_record, "slow", 2, queue="notifications")
    worker = processes.worker("notifications")
    wait_for(lambda: Job.fetch(job_id, connection=get_redis()).get_status() == "started", message="job start")

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(15) == 0
    assert [label for label, _ in tasks.ran()] == ["slow"]
    assert Job.fetch(job_id, connection=get_redis()).get_status() == "finished"


def test_a_job_still_running_after_the_shutdown_grace_is_interrupted_and_retried(processes):
    job_id = enqueue(tasks.sleep_then_record, "too-slow", 30, queue="notifications")
    worker = processes.worker("notifications", env={"WORKER_SHUTDOWN_GRACE": 1})
    wait_for(lambda: Job.fetch(job_id, connection=get_redis()).get_status() == "started", message="job start")

    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(15)

    assert time.monotonic() - started < 5
    job = Job.fetch(job_id, connection=get_redis())
    assert job.get_status() == "scheduled"  # its first retry, 2 s later, for the next worker
    assert job.retries_left == 2
    assert tasks.ran() == []


def test_a_worker_survives_a_redis_outage_and_carries_on(processes):
    worker = processes.worker("notifications")
    wait_for(lambda: list(get_redis().scan_iter("conveyor:worker-alive:*")), message="worker liveness key")

    redis_server.stop_redis()
    time.sleep(3)
    redis_server.start_redis()
    assert worker.poll() is None

    enqueue(tasks.record, "after-outage", queue="notifications")
    wait_for(lambda: tasks.ran(), timeout=20, message="the job enqueued after the outage to run")
    assert [label for label, _ in tasks.ran()] == ["after-outage"]


def test_a_stopped_worker_leaves_no_liveness_key(processes):
    worker = processes.worker("notifications")
    wait_for(lambda: list(get_redis().scan_iter("conveyor:worker-alive:*")), message="worker liveness key")
    worker.send_signal(signal.SIGTERM)
    worker.wait(15)
    assert list(get_redis().scan_iter("conveyor:worker-alive:*")) == []


def test_health_counts_live_workers_and_forgets_killed_ones(processes, live_server):
    import httpx

    def workers():
        return httpx.get(f"{live_server.url}/health").json()["workers"]

    stopped = processes.worker("notifications")
    killed = processes.worker("notifications")
    wait_for(lambda: workers() == 2, message="two live workers")
    stopped.send_signal(signal.SIGTERM)
    stopped.wait(15)
    assert workers() == 1  # a clean stop says goodbye at once
    killed.kill()
    killed.wait(5)
    # A killed worker says nothing: it drops out when its promise expires (WORKER_ALIVE_TTL=2 here).
    wait_for(lambda: workers() == 0, timeout=10, message="the killed worker to expire")


def test_workers_register_again_after_redis_loses_its_data(processes):
    from rq import Worker

    from jobs.queueing import get_queue

    processes.worker("notifications")
    processes.worker("notifications", "user-actions", processes=2)
    wait_for(lambda: Worker.count(queue=get_queue("notifications")) == 3, message="three registered workers")

    get_redis().flushall()

    # Within one heartbeat (0.5 s here), each writes its hash and its queues' worker sets again.
    wait_for(lambda: Worker.count(queue=get_queue("notifications")) == 3, timeout=5, message="re-registration")
    assert Worker.count(queue=get_queue("user-actions")) == 2
    workers = Worker.all(connection=get_redis())
    assert len(workers) == 3 and all(worker.birth_date and worker.get_state() for worker in workers)


def test_a_killed_scheduler_process_is_started_again_by_its_worker(processes):
    processes.worker("notifications")
    doomed = wait_for(lambda: scheduler_pid("notifications"), message="the scheduler process")
    os.kill(doomed, signal.SIGKILL)

    restarted = wait_for(lambda: (scheduler_pid("notifications") or doomed) != doomed, timeout=10)
    assert restarted
    enqueue_in(1, "delayed")
    wait_for(lambda: tasks.ran(), timeout=5, message="a delayed job promoted by the new scheduler")


def enqueue_in(seconds, label):
    return enqueue(tasks.record, label, queue="notifications", delay=seconds)


def test_a_killed_workers_scheduler_stops_and_another_worker_takes_over(processes):
    import psutil

    first = processes.worker("notifications")
    wait_for(lambda: scheduler_pid("notifications"), message="the first worker's scheduler")
    processes.worker("notifications")
    orphan = psutil.Process(scheduler_pid("notifications"))
    assert orphan.ppid() == first.pid

    first.kill()
    first.wait(5)

    orphan.wait(10)  # it noticed its worker is gone and gave its lock back
    successor = wait_for(lambda: scheduler_pid("notifications"), timeout=10, message="another scheduler")
    assert successor != orphan.pid
    enqueue_in(1, "delayed")
    wait_for(lambda: tasks.ran(), timeout=5, message="a delayed job promoted by the new scheduler")


def test_the_platforms_upkeep_is_not_starved_by_a_backlog(processes):
    # A worker on every queue, busy with a backlog: the reconciler, retention and charts run on
    # the maintenance queue, and a backlog must not hold them back (a killed worker's row
    # would wait for the backlog to drain before anyone gave it a new job).
    for number in range(15):
        enqueue(tasks.record_span, f"backlog{number}", 0.2, queue="notifications")
    processes.worker()
    wait_for(lambda: "backlog0" in tasks.spans(), message="the backlog to start")

    enqueue(tasks.record, "upkeep", queue="maintenance")

    wait_for(lambda: "upkeep" in dict(tasks.ran()), timeout=15, message="the upkeep job")
    finished = [label for label, (_, end) in tasks.spans().items() if end and end < dict(tasks.ran())["upkeep"]]
    assert len(finished) <= 3, f"the upkeep job waited for {len(finished)} backlog jobs"
