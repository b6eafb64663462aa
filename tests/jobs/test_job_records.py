"""RQ's records of a job's start and end, as the worker writes them in fewer commands
(jobs/job_records.py): what django-rq's dashboard reads must be what RQ itself would write."""

import pytest
from rq import Queue, SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from rq.registry import FinishedJobRegistry, StartedJobRegistry

from jobs.connection import get_redis
from jobs.policies import policy_for
from jobs.queueing import enqueue, get_queue, job_options
from tests.conftest import wait_for
from tests.jobs import tasks


def job_of(job_id):
    return Job.fetch(job_id, connection=get_redis())


def test_a_running_job_shows_where_the_dashboard_looks(processes):
    job_id = enqueue(tasks.sleep_then_record, "slow", 2, queue="notifications")
    processes.worker("notifications")
    wait_for(lambda: job_of(job_id).get_status() == "started", message="the job to start")

    started = StartedJobRegistry("notifications", connection=get_redis())
    [(running_id, execution_id)] = started.get_job_and_execution_ids()
    execution = Execution.fetch(execution_id, running_id, connection=get_redis())
    [worker] = Worker.all(connection=get_redis())
    job = job_of(job_id)
    assert running_id == job_id and execution.worker_name == worker.name == job.worker_name
    assert worker.get_state() == "busy" and worker.get_current_job().id == job_id
    assert job.started_at is not None and get_redis().ttl(job.key) == -1
    assert get_redis().llen(get_queue("notifications").intermediate_queue_key) == 0


def test_a_finished_job_leaves_what_rq_leaves(processes):
    job_id = enqueue(tasks.sleep_then_record, "done", 1, queue="notifications")
    processes.worker("notifications")
    wait_for(lambda: job_of(job_id).get_status() == "finished", message="the job to finish")

    job = job_of(job_id)
    [worker] = Worker.all(connection=get_redis())
    assert job.started_at < job.ended_at and job.worker_name == worker.name
    assert job.return_value() == "done"
    assert FinishedJobRegistry("notifications", connection=get_redis()).get_job_ids() == [job_id]
    assert StartedJobRegistry("notifications", connection=get_redis()).get_job_and_execution_ids() == []
    assert list(get_redis().scan_iter("rq:execution:*")) == []
    wait_for(lambda: Worker.find_by_key(worker.key, connection=get_redis()).get_state() == "idle", message="idle")
    worker = Worker.find_by_key(worker.key, connection=get_redis())
    assert (worker.successful_job_count, worker.failed_job_count) == (1, 0)
    assert 1 <= worker.total_working_time < 5
    assert 0 < get_redis().ttl(job.key) <= job.result_ttl


def test_the_job_hash_has_the_fields_rqs_own_worker_writes(transactional_db, run_worker_burst):
    ours = enqueue(tasks.record, "ours", queue="notifications")
    run_worker_burst("notifications")
    raw_queue = Queue("rq-raw", connection=get_redis())
    options = job_options(policy_for("notifications"), job_id=None, rate_key=None, rate_limited=True, description=None)
    theirs = raw_queue.enqueue(tasks.record, "theirs", **options).id
    SimpleWorker([raw_queue], connection=get_redis()).work(burst=True)

    fields = {job_id: set(get_redis().hkeys(f"rq:job:{job_id}")) for job_id in (ours, theirs)}
    assert fields[ours] == fields[theirs]
    assert job_of(ours).get_status() == job_of(theirs).get_status() == "finished"


def test_a_job_returning_nothing_keeps_no_result_stream(transactional_db, run_worker_burst):
    job_id = enqueue(tasks.sleep_then_record, "quiet", 0, queue="notifications")
    nothing = enqueue(tasks.nothing, queue="notifications")
    run_worker_burst("notifications")

    assert job_of(job_id).return_value() == "quiet"
    assert job_of(nothing).get_status() == "finished" and job_of(nothing).latest_result() is None


def test_conveyors_queues_refuse_job_dependencies(transactional_db):
    first = get_queue("notifications").enqueue(tasks.record, "first")
    with pytest.raises(ValueError, match="dependencies"):
        get_queue("notifications").enqueue(tasks.record, "second", depends_on=first)
