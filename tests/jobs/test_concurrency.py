"""Per-queue concurrency, held in Redis across worker processes (jobs/concurrency.py)."""

import json
import signal
import time

from rq.job import Job
from rq.registry import FailedJobRegistry

from chaos.limits import most_at_once
from jobs import concurrency
from jobs.connection import get_redis
from jobs.policies import all_policies, policy_for
from jobs.queueing import enqueue, get_queue
from tests.conftest import wait_for
from tests.jobs import tasks


def test_the_seeds_give_each_queue_its_concurrency():
    assert {name: policy.concurrency for name, policy in all_policies().items()} == {
        "publishing-builds": 1,
        "content-aggregation": 2,
        "notifications": 1,
        "user-actions": 1,
        "rules-run": 5,
        "alerts-dispatch": 10,
        "maintenance": 1,
    }


def test_workers_is_still_read_as_the_old_name_of_concurrency(policies):
    policies("notifications", workers=3)
    assert policy_for("notifications").concurrency == 3


def test_a_start_over_the_cap_takes_nothing(transactional_db):
    policy = policy_for("publishing-builds")  # cap 1, rate limit 5 a minute
    first = concurrency.try_start(get_redis(), policy, "first")
    second = concurrency.try_start(get_redis(), policy, "second")

    assert first.lease and second.over_cap
    assert concurrency.running("publishing-builds", get_redis()) == 1
    assert get_redis().zcard("conveyor:ratelimit:publishing-builds") == 1  # the refused start used no slot


def test_the_cap_holds_across_two_worker_processes(processes):
    job_ids = [enqueue(tasks.record_span, f"job{n}", 0.4, queue="notifications") for n in range(5)]
    processes.worker("notifications")
    processes.worker("notifications")

    wait_for(lambda: all(end for _, end in tasks.spans().values()) and len(tasks.spans()) == 5, timeout=30)

    assert most_at_once(tasks.spans().values()) == 1
    # Waiting for a slot is neither a failure nor a retry.
    assert all(job.retries_left == 3 for job in Job.fetch_many(job_ids, connection=get_redis()))
    assert FailedJobRegistry(queue=get_queue("notifications")).count == 0


def test_a_queue_cannot_take_every_process_of_a_shared_pool(processes):
    env = {"CONVEYOR_QUEUE_NOTIFICATIONS_JSON": json.dumps({"concurrency": 5})}
    for n in range(3):
        enqueue(tasks.record_span, f"flood{n}", 1.5, queue="notifications")
    processes.worker("notifications", "user-actions", processes=3, env=env)
    wait_for(lambda: len(tasks.spans()) >= 2, message="the flood to start")

    enqueue(tasks.record_span, "other", 0, queue="user-actions")

    wait_for(lambda: tasks.spans().get("other", (None, None))[1], timeout=10, message="the other queue's job")
    flood = [span for label, span in tasks.spans().items() if label.startswith("flood")]
    assert any(end is None or end > tasks.spans()["other"][0] for _, end in flood), "ran only after the flood"
    wait_for(lambda: len(tasks.spans()) == 4 and all(end for _, end in tasks.spans().values()), timeout=20)
    flood = [span for label, span in tasks.spans().items() if label.startswith("flood")]
    assert most_at_once(flood) == 2  # min(concurrency 5, pool of 3 - 1)


def test_a_killed_workers_slot_frees_itself(processes):
    enqueue(tasks.record_span, "stuck", 60, queue="notifications")
    enqueue(tasks.record_span, "next", 0, queue="notifications")
    doomed = processes.worker("notifications")
    wait_for(lambda: "stuck" in tasks.spans(), message="the first job to start")

    doomed.send_signal(signal.SIGKILL)
    killed_at = time.time()
    processes.worker("notifications")

    started = wait_for(lambda: tasks.spans().get("next", (None,))[0], timeout=20, message="the next job")
    assert started - killed_at < 8  # WORKER_ALIVE_TTL is 2 s here


def test_a_running_job_takes_its_lease_again_after_redis_forgot_it(processes):
    enqueue(tasks.record_span, "long", 3, queue="notifications")
    processes.worker("notifications")
    wait_for(lambda: concurrency.running("notifications", get_redis()) == 1, message="the long job's lease")

    get_redis().flushall()  # the job runs on; its lease, the record of its slot, is gone

    # Its worker's next heartbeat (0.5 s here) takes the lease again: the cap holds again.
    wait_for(lambda: concurrency.running("notifications", get_redis()) == 1, timeout=3, message="the lease back")
    enqueue(tasks.record_span, "next", 0, queue="notifications")
    processes.worker("notifications")
    wait_for(lambda: "next>end" in dict(tasks.ran()), timeout=15, message="the next job")
    ran = dict(tasks.ran())
    assert ran["next>start"] >= ran["long>end"]  # the second worker waited for the slot
    # Each lease was released when its job ended; none was taken again after that.
    wait_for(lambda: concurrency.running("notifications", get_redis()) == 0, timeout=1, message="no lease left")


def test_a_lease_whose_release_was_sent_is_not_taken_again(transactional_db):
    from jobs.worker import ConveyorWorker

    worker = ConveyorWorker([get_queue("notifications")], connection=get_redis())
    worker._lease = concurrency.try_start(get_redis(), policy_for("notifications"), "ending").lease
    get_redis().flushall()
    worker._refresh_lease()
    assert concurrency.running("notifications", get_redis()) == 1  # lost, and taken again

    worker._lease_release_sent = True  # the job ended: its release rides in RQ's last pipeline
    with get_redis().pipeline() as pipe:
        worker._lease.release(pipe)
        pipe.execute()
    worker._refresh_lease()  # a heartbeat that comes after the release was sent
    assert concurrency.running("notifications", get_redis()) == 0
