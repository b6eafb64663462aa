import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

from jobs import pausing, reconciler, retention, services
from jobs.connection import get_redis
from jobs.policies import RateLimit, policy_for
from jobs.queueing import enqueue, get_queue
from tests.jobs import tasks


def test_the_policy_table_holds_the_design_defaults():
    publishing = policy_for("publishing-builds")
    assert publishing.retry_delays == (2, 4, 8)
    assert publishing.rate_limit == RateLimit(starts=5, per_seconds=60)
    assert (publishing.keep_finished, publishing.keep_failed) == (100, 500)
    assert policy_for("alerts-dispatch").retry_delays == (10, 30, 60, 120, 300)


def test_a_bad_policy_value_fails_loudly(policies):
    policies("notifications", rate_limit="five per minute")
    with pytest.raises(ImproperlyConfigured, match="rate_limit"):
        policy_for("notifications")


def test_an_unknown_queue_fails_loudly():
    with pytest.raises(ImproperlyConfigured, match="not declared"):
        policy_for("no-such-queue")


def test_enqueue_applies_the_queue_policy(transactional_db):
    job_id = enqueue(tasks.record, "a", queue="publishing-builds")
    job = Job.fetch(job_id, connection=get_redis())
    assert job.retries_left == 3
    assert list(job.retry_intervals) == [2, 4, 8]
    assert job.result_ttl == policy_for("publishing-builds").finished_ttl
    assert job.failure_ttl == policy_for("publishing-builds").failed_ttl
    assert job.timeout == policy_for("publishing-builds").timeout


def test_enqueue_waits_for_the_transaction_to_commit(transactional_db):
    queue = get_queue("notifications")
    with transaction.atomic():
        enqueue(tasks.record, "a", queue="notifications")
        assert queue.count == 0
    assert queue.count == 1


def test_enqueue_inside_a_rolled_back_transaction_pushes_nothing(transactional_db):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            enqueue(tasks.record, "a", queue="notifications")
            raise RuntimeError("rollback")
    assert get_queue("notifications").count == 0


def test_jobs_run_end_to_end_in_a_worker(transactional_db, run_worker_burst):
    for label in "abc":
        enqueue(tasks.record, label, queue="notifications")
    run_worker_burst("notifications")
    assert [label for label, _ in tasks.ran()] == ["a", "b", "c"]
    assert FinishedJobRegistry(queue=get_queue("notifications")).count == 3


def run_until(run_worker_burst, queue, count, timeout=20):
    deadline = time.monotonic() + timeout
    while len(tasks.ran()) < count and time.monotonic() < deadline:
        run_worker_burst(queue)
        time.sleep(0.2)
    return tasks.ran()


def test_rate_limited_jobs_wait_without_failing_or_using_a_retry(transactional_db, policies, run_worker_burst):
    policies("notifications", rate_limit="2/2", retry_delays=[5, 5, 5])
    job_ids = [enqueue(tasks.record, str(n), queue="notifications") for n in range(5)]

    runs = run_until(run_worker_burst, "notifications", 5)

    assert sorted(label for label, _ in runs) == ["0", "1", "2", "3", "4"]
    starts = [at for _, at in runs]
    for first in starts:
        assert sum(1 for at in starts if first <= at < first + 1.95) <= 2, starts
    assert starts[-1] - starts[0] >= 3.5  # five starts at two per two seconds
    jobs = Job.fetch_many(job_ids, connection=get_redis())
    assert all(job.retries_left == 3 for job in jobs)
    assert FailedJobRegistry(queue=get_queue("notifications")).count == 0


def test_rate_limit_per_key_keeps_keys_apart(transactional_db, policies, run_worker_burst):
    policies("user-actions", rate_limit="1/30")
    enqueue(tasks.record, "host-a", queue="user-actions", rate_key="a.example")
    enqueue(tasks.record, "host-b", queue="user-actions", rate_key="b.example")
    enqueue(tasks.record, "host-a-again", queue="user-actions", rate_key="a.example")
    run_worker_burst("user-actions")
    assert sorted(label for label, _ in tasks.ran()) == ["host-a", "host-b"]
    assert ScheduledJobRegistry(queue=get_queue("user-actions")).count == 1
    # Not left in RQ's intermediate list, whose cleanup would fail it after a minute.
    assert get_redis().llen("rq:queue:user-actions:intermediate") == 0


def test_a_job_popped_as_its_queue_is_paused_goes_back_to_the_front(transactional_db):
    from jobs.worker import ConveyorQueue, ConveyorWorker

    first = enqueue(tasks.record, "first", queue="notifications")
    second = enqueue(tasks.record, "second", queue="notifications")
    worker = ConveyorWorker([ConveyorQueue("notifications", connection=get_redis())], connection=get_redis())
    job, queue = ConveyorQueue.dequeue_any(worker.queues, None, connection=get_redis())
    services.queue_pause(name="notifications")
    time.sleep(pausing.CACHE_SECONDS)  # workers read the paused set at most this often
    worker.execute_job(job, queue)

    assert tasks.ran() == []
    assert get_queue("notifications").get_job_ids() == [first, second]
    assert get_redis().llen("rq:queue:notifications:intermediate") == 0


def test_a_paused_queue_waits_while_other_queues_run(transactional_db, run_worker_burst):
    services.queue_pause(name="notifications")
    enqueue(tasks.record, "paused", queue="notifications")
    enqueue(tasks.record, "running", queue="user-actions")

    run_worker_burst("notifications", "user-actions")
    assert [label for label, _ in tasks.ran()] == ["running"]
    assert get_queue("notifications").count == 1

    services.queue_resume(name="notifications")
    run_worker_burst("notifications", "user-actions")
    assert [label for label, _ in tasks.ran()] == ["running", "paused"]


def test_a_pause_survives_redis_losing_its_data(transactional_db, run_worker_burst):
    services.queue_pause(name="notifications")
    get_redis().flushdb()
    reconciler.reconcile()
    enqueue(tasks.record, "paused", queue="notifications")
    run_worker_burst("notifications")
    assert tasks.ran() == []


def test_retention_keeps_the_newest_jobs_by_count(transactional_db, policies, run_worker_burst):
    policies("notifications", keep_finished=3, keep_failed=2, retry_delays=[])
    finished = [enqueue(tasks.record, f"ok{n}", queue="notifications") for n in range(6)]
    failed = [enqueue(tasks.fail_always, f"bad{n}", queue="notifications") for n in range(4)]
    run_worker_burst("notifications")

    trimmed = retention.trim_all()

    queue = get_queue("notifications")
    assert trimmed["notifications"] == {"finished": 3, "failed": 2}
    assert sorted(FinishedJobRegistry(queue=queue).get_job_ids()) == sorted(finished[3:])
    assert sorted(FailedJobRegistry(queue=queue).get_job_ids()) == sorted(failed[2:])
    assert Job.fetch_many(finished[:3] + failed[:2], connection=get_redis()) == [None] * 5


def test_dedupe_enqueues_a_key_once_within_its_window(transactional_db, policies):
    policies("alerts-dispatch", dedupe_window=1)
    first = enqueue(tasks.record, "a", queue="alerts-dispatch", dedupe_key="rule-1:hash")
    second = enqueue(tasks.record, "a", queue="alerts-dispatch", dedupe_key="rule-1:hash")
    other = enqueue(tasks.record, "b", queue="alerts-dispatch", dedupe_key="rule-2:hash")
    assert first and other and second is None
    assert get_queue("alerts-dispatch").count == 2
    time.sleep(1.1)
    assert enqueue(tasks.record, "a", queue="alerts-dispatch", dedupe_key="rule-1:hash")


def test_the_worker_enforces_job_timeouts(transactional_db, policies, run_worker_burst):
    policies("notifications", timeout=1, retry_delays=[])
    job_id = enqueue(tasks.sleep_then_record, "slow", 5, queue="notifications")
    started = time.monotonic()
    run_worker_burst("notifications")
    assert time.monotonic() - started < 4
    job = Job.fetch(job_id, connection=get_redis())
    assert job.get_status() == "failed"
    assert "JobTimeoutException" in job.latest_result().exc_string
    assert tasks.ran() == []
