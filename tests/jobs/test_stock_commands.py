"""django-rq's own commands run the platform: rqworker, rqworker-pool, rqscheduler."""

import os
import time

import psutil
import pytest
from django.conf import settings
from rq import Worker

from jobs import services
from jobs.connection import get_redis
from jobs.queueing import enqueue, get_queue
from publishing.models import Publishing
from tests import redis_server
from tests.conftest import wait_for
from tests.jobs import tasks


def worker_queue_names():
    return [worker.queue_names() for worker in Worker.all(connection=get_redis())]


def test_rqworker_with_no_queue_named_serves_every_queue_and_runs_a_publishing(
    api, fake_eas, processes, fast_publishing_policy
):
    fake_eas.configure(polls_until_done=2)
    project = api.create_project()
    publishing_id = api.initiate(project).json()["id"]
    processes.worker()
    processes.scheduler()

    wait_for(lambda: Publishing.objects.get(pk=publishing_id).status == "succeeded", timeout=30)

    assert worker_queue_names() == [settings.WORKER_QUEUES]
    commands = [call["command"] for call in fake_eas.calls()]
    assert commands == ["build", "build:view", "build:view", "build:view", "submit"]  # polls promoted on time


def test_a_paused_queue_waits_without_a_busy_loop(processes):
    services.queue_pause(name="notifications")
    enqueue(tasks.record, "waited", queue="notifications")
    worker = processes.worker("notifications")
    wait_for(lambda: worker_queue_names(), message="the worker to register")
    process = psutil.Process(worker.pid)

    before = process.cpu_times()
    time.sleep(4)
    after = process.cpu_times()

    busy = (after.user + after.system) - (before.user + before.system)
    assert busy < 0.4, f"{busy:.2f}s of CPU in 4s while paused"
    assert tasks.ran() == [] and get_queue("notifications").count == 1
    services.queue_resume(name="notifications")
    wait_for(lambda: tasks.ran(), timeout=10, message="the job once resumed")


def periodic_jobs():
    return {job_id.decode() for job_id in get_redis().zrange("rq:scheduler:scheduled_jobs", 0, -1)}


def test_rqscheduler_registers_the_platform_periodic_jobs(processes):
    processes.scheduler()
    wait_for(lambda: {"conveyor-reconcile", "conveyor-cleanup"} <= periodic_jobs(), message="the periodic jobs")


def test_rqscheduler_outlives_a_redis_outage(processes):
    scheduler = processes.scheduler()
    wait_for(lambda: "conveyor-reconcile" in periodic_jobs(), message="the periodic jobs")

    redis_server.stop_redis()
    time.sleep(3)
    redis_server.start_redis()  # empty: it lost the periodic jobs too

    wait_for(lambda: "conveyor-reconcile" in periodic_jobs(), timeout=20, message="the periodic jobs again")
    assert scheduler.poll() is None


@pytest.mark.parametrize(("queues", "size"), [(("content-aggregation",), 2), ((), 3)])
def test_rqworker_pool_sizes_itself_from_the_queue_or_the_settings(processes, queues, size):
    processes.start("rqworker-pool", *queues, env={"WORKER_PROCESSES": 3}, name="pool")
    wait_for(lambda: len(worker_queue_names()) == size, message=f"{size} workers")
    time.sleep(1)
    assert len(worker_queue_names()) == size
    assert all(names == list(queues or settings.WORKER_QUEUES) for names in worker_queue_names())


def test_manage_py_finds_what_make_run_keeps_in_var(tmp_path, monkeypatch):
    from config import settings as config

    monkeypatch.setattr(config, "VAR_DIR", tmp_path / "var")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "redis_url").write_text("redis://:secret@127.0.0.1:6380/0\n")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert config.env_or_var_file("REDIS_URL", "redis_url") == "redis://:secret@127.0.0.1:6380/0"

    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    assert config.env_or_var_file("REDIS_URL", "redis_url") == "redis://elsewhere:6379/0"  # set wins
    assert config.env_or_var_file("SECRET_KEY_UNSET_HERE", "no_such_file") == ""


def test_the_private_redis_asks_for_its_password(tmp_path):
    import redis

    from core import devredis

    process, url, _ = devredis.start(tmp_path, persistent=False, password="s3cret-pass")
    try:
        assert redis.Redis.from_url(url).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url.replace(":s3cret-pass@", "")).set("key", "value")
        assert "s3cret-pass" not in " ".join(psutil.Process(process.pid).cmdline())
        assert oct(os.stat(tmp_path / "password.conf").st_mode & 0o777) == "0o600"
    finally:
        devredis.stop(process)


def test_django_rq_builds_the_platform_classes(transactional_db):
    import django_rq
    from rq import Queue

    from jobs.queueing import ConveyorQueue
    from jobs.scheduling import ConveyorScheduler
    from jobs.worker import ConveyorWorker

    assert type(django_rq.get_queue("notifications")) is ConveyorQueue  # despite its commit_mode argument
    assert type(django_rq.get_scheduler("maintenance")) is ConveyorScheduler
    worker = django_rq.get_worker("notifications", "user-actions")
    assert type(worker) is ConveyorWorker
    # rq's WorkerPool hands its workers plain rq.Queue objects: they become ConveyorQueue.
    plain = ConveyorWorker([Queue("notifications", connection=get_redis())], connection=get_redis())
    assert [type(queue) for queue in plain.queues] == [ConveyorQueue]
