import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job

from jobs import reconciler
from jobs.connection import get_redis
from jobs.queueing import get_queue
from jobs.worker import ConveyorWorker, alive_key, unseen_key
from publishing.models import Project, Publishing
from workspaces.services import workspace_ensure_personal


@pytest.fixture
def publishing(make_user):
    user = make_user("carol")
    project = Project.objects.create(workspace=workspace_ensure_personal(user=user), name="app")
    row = Publishing.objects.create(
        workspace=project.workspace, project=project, requested_by=user, platform="ios", job_id="lost-job"
    )
    return row


def age(row, seconds=60):
    Publishing.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


@pytest.fixture
def queued_job(publishing, settings):
    """The publishing's job, in its queue; a worker takes over a second to start a job."""
    settings.WORKER_ALIVE_TTL = 1
    age(publishing)
    reconciler.reconcile(grace=5)
    return job_of(publishing)


def job_of(row):
    row.refresh_from_db()
    return Job.fetch(row.job_id, connection=get_redis())


def test_a_queued_row_whose_job_is_gone_is_enqueued_again(publishing):
    age(publishing)
    assert reconciler.reconcile(grace=5) == 1
    job = job_of(publishing)
    assert job.id != "lost-job"
    assert job.args == (publishing.pk,)
    assert get_queue("publishing-builds").get_job_ids() == [job.id]


def test_a_row_updated_within_the_grace_period_is_left_alone(publishing):
    assert reconciler.reconcile(grace=5) == 0
    publishing.refresh_from_db()
    assert publishing.job_id == "lost-job"


def test_a_row_with_a_live_job_is_left_alone(publishing):
    age(publishing)
    reconciler.reconcile(grace=5)
    job = job_of(publishing)
    age(publishing)
    assert reconciler.reconcile(grace=5) == 0
    assert job_of(publishing).id == job.id


def test_a_row_started_by_a_dead_worker_is_resumed_but_not_one_started_by_a_live_worker(publishing):
    age(publishing)
    reconciler.reconcile(grace=5)
    job = job_of(publishing)
    get_redis().hset(job.key, mapping={"status": "started", "worker_name": "w1"})
    get_redis().set(alive_key("w1"), 1, ex=10)
    age(publishing)
    assert reconciler.reconcile(grace=5) == 0

    get_redis().delete(alive_key("w1"))
    assert reconciler.reconcile(grace=5) == 1
    assert job_of(publishing).id != job.id


def test_finished_rows_are_never_resumed(publishing):
    Publishing.objects.filter(pk=publishing.pk).update(status="succeeded")
    age(publishing)
    assert reconciler.reconcile(grace=5) == 0


def test_two_reconcilers_at_once_resume_a_row_once(publishing):
    age(publishing)
    get_redis().set(reconciler.LOCK_KEY, "1", ex=60)
    assert reconciler.reconcile(grace=5) == 0
    get_redis().delete(reconciler.LOCK_KEY)
    assert reconciler.reconcile(grace=5) == 1


def test_a_lost_row_behind_a_backlog_of_waiting_ones_is_resumed(publishing, monkeypatch):
    """More stale rows with live jobs (queued behind a rate limit, say) than one batch
    holds, older than the lost row: the reconciler still reaches the lost one."""
    monkeypatch.setattr(reconciler, "BATCH", 3)
    waiting = [
        Publishing.objects.create(
            workspace=publishing.workspace, project=publishing.project, requested_by=publishing.requested_by
        )
        for _ in range(7)
    ]
    for row in waiting:
        age(row, seconds=120)
    assert reconciler.reconcile(grace=5) == 7  # their first jobs, then alive in the queue
    for row in waiting:
        age(row, seconds=120)
    age(publishing, seconds=60)

    assert reconciler.reconcile(grace=5) == 1
    assert job_of(publishing).id != "lost-job"
    assert reconciler.reconcile(grace=5) == 0


@pytest.mark.parametrize("pop", ["lmove", "lpop"])
def test_a_job_stranded_by_a_worker_killed_between_popping_and_starting_it_is_replaced(publishing, queued_job, pop):
    """A worker pops a job (on one queue into the queue's intermediate list, on several with
    BLPOP, out of every list), then dies before the start (SIGKILL, OOM): the job still
    says "queued", but no worker will ever take it. Once it has been missing longer than a
    live worker takes to start a job, its row gets a new job, and the stranded one is
    forgotten (in the intermediate list, RQ would fail it minutes later)."""
    queue = get_queue("publishing-builds")
    stranded = queued_job
    popped = IntermediateQueue(queue.key, get_redis())
    if pop == "lmove":
        assert get_redis().lmove(queue.key, popped.key) == stranded.id.encode()
    else:
        assert get_redis().lpop(queue.key) == stranded.id.encode()
    age(publishing)

    assert reconciler.reconcile(grace=5) == 0  # missed once: the clock starts
    time.sleep(2.1)
    assert reconciler.reconcile(grace=5) == 1

    replacement = job_of(publishing)
    assert replacement.id != stranded.id and queue.get_job_ids() == [replacement.id]
    assert popped.get_job_ids() == [] and not Job.exists(stranded.id, connection=get_redis())
    assert not get_redis().exists(unseen_key(stranded.id))


def test_a_job_waiting_in_its_queue_is_never_taken_for_stranded(publishing, queued_job):
    job = queued_job
    for _ in range(3):
        age(publishing)
        assert reconciler.reconcile(grace=5) == 0
        time.sleep(1.1)
    assert job_of(publishing).id == job.id and get_queue("publishing-builds").get_job_ids() == [job.id]


def test_a_job_going_back_to_its_queue_at_the_cap_is_not_taken_for_stranded(publishing, queued_job):
    """At its queue's cap, a popped job goes back to the queue's front, again and again: a
    sighting in the intermediate list on an earlier trip does not count."""
    queue = get_queue("publishing-builds")
    job = queued_job
    popped = IntermediateQueue(queue.key, get_redis())
    get_redis().lmove(queue.key, popped.key)
    age(publishing)
    assert reconciler.reconcile(grace=5) == 0  # missed once
    with get_redis().pipeline() as pipe:  # back to the queue, as a worker at the cap puts it
        queue.push_job_id(job.id, pipeline=pipe, at_front=True)
        ConveyorWorker._forget_dequeue(job, queue, pipe)
        pipe.execute()
    time.sleep(2.1)
    get_redis().lmove(queue.key, popped.key)  # popped again, a moment ago

    assert reconciler.reconcile(grace=5) == 0
    assert job_of(publishing).id == job.id
