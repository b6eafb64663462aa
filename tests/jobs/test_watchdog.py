"""The watchdog of RQ's scheduled registries (jobs/watchdog.py): nothing stays stranded."""

import logging
from datetime import timedelta

from rq.registry import ScheduledJobRegistry
from rq.utils import now, utcformat

from jobs import watchdog
from jobs.connection import get_redis
from jobs.queueing import enqueue, get_queue
from tests.conftest import wait_for
from tests.jobs import tasks


def schedule_job(label, due_in):
    """A job in the notifications queue's scheduled registry, due `due_in` seconds from now."""
    job_id = enqueue(tasks.record, label, queue="notifications")
    queue = get_queue("notifications")
    queue.remove(job_id)
    registry = ScheduledJobRegistry(queue=queue)
    registry.schedule(queue.fetch_job(job_id), now() + timedelta(seconds=due_in))
    return job_id


def test_a_job_overdue_past_the_grace_is_promoted_once_and_logged(transactional_db, caplog):
    overdue = schedule_job("overdue", -30)
    recent = schedule_job("recent", -1)  # within SCHEDULED_OVERDUE_GRACE: a scheduler's to promote
    future = schedule_job("future", 60)

    with caplog.at_level(logging.WARNING, logger="conveyor.watchdog"):
        assert watchdog.promote_overdue(get_redis()) == [overdue]
    assert watchdog.promote_overdue(get_redis()) == []

    queue = get_queue("notifications")
    assert queue.get_job_ids() == [overdue]
    assert set(ScheduledJobRegistry(queue=queue).get_job_ids()) == {recent, future}
    assert f"job {overdue} on notifications was due" in caplog.text


def test_the_lock_of_a_scheduler_that_stopped_beating_is_freed(transactional_db):
    redis = get_redis()
    redis.set("rq:scheduler-lock:notifications", "dead-one", ex=60)
    redis.set("rq:scheduler-lock:user-actions", "live-one", ex=60)
    redis.hset("rq:scheduler:live-one", "last_heartbeat", utcformat(now()))

    assert watchdog.free_stale_scheduler_lock(redis, "notifications")
    assert not watchdog.free_stale_scheduler_lock(redis, "user-actions")
    assert redis.get("rq:scheduler-lock:notifications") is None
    assert redis.get("rq:scheduler-lock:user-actions") == b"live-one"


def test_one_worker_at_a_time_takes_the_watchdog_turn(transactional_db):
    with get_redis().pipeline() as pipe:
        watchdog.take_turn(pipe, "first", 3)
        watchdog.take_turn(pipe, "second", 3)
        assert [bool(won) for won in pipe.execute()] == [True, False]


def test_a_killed_worker_leaves_the_dashboards_count_within_its_liveness(processes):
    from rq import Worker

    processes.worker("notifications")
    killed = processes.worker("notifications")
    wait_for(lambda: Worker.count(connection=get_redis()) == 2, message="two registered workers")

    killed.kill()
    killed.wait(5)

    # WORKER_ALIVE_TTL is 2 s in the tests' worker processes: the survivor forgets the dead one.
    wait_for(lambda: Worker.count(connection=get_redis()) == 1, timeout=15, message="the killed worker to be forgotten")
    assert Worker.count(queue=get_queue("notifications"), connection=get_redis()) == 1
