"""Attempts are pruned by their retention, hourly, on the maintenance queue, and go with their row."""

from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rq.job import Job

from jobs import attempts, scheduling
from jobs.connection import get_redis
from jobs.models import Attempt
from jobs.queueing import enqueue
from publishing.models import Project, Publishing
from workspaces.services import workspace_ensure_personal


def attempt_started(days_ago):
    started = timezone.now() - timedelta(days=days_ago)
    return Attempt(
        content_type=ContentType.objects.get_for_model(Publishing),
        object_id=1,
        queue="publishing-builds",
        job_id=f"job-{days_ago}",
        started_at=started,
        ended_at=started + timedelta(seconds=1),
        outcome=Attempt.Outcome.SUCCEEDED,
    )


def test_attempts_older_than_the_retention_are_pruned_by_the_maintenance_job(
    transactional_db, settings, run_worker_burst, monkeypatch
):
    settings.ATTEMPTS_KEPT_DAYS = 30
    monkeypatch.setattr(attempts, "PRUNE_BATCH", 2)  # several batches
    Attempt.objects.bulk_create([attempt_started(days) for days in (0, 29, 31, 45, 90, 400)])

    job_id = enqueue("jobs.jobs.attempts_prune", queue="maintenance")
    run_worker_burst("maintenance")

    assert sorted(Attempt.objects.values_list("job_id", flat=True)) == ["job-0", "job-29"]
    assert Job.fetch(job_id, connection=get_redis()).return_value() == "4 attempts older than the retention deleted"


def test_the_pruning_runs_every_hour(transactional_db):
    scheduler = scheduling.get_scheduler()
    scheduling.sync_provider(scheduler, attempts.PRUNE_PREFIX, attempts.housekeeping_schedules)
    assert scheduling.timing_of(scheduler, "conveyor-attempts-prune") == "every 3600s"


def test_a_deleted_row_takes_its_attempts_along(transactional_db, make_user):
    user = make_user("erin")
    project = Project.objects.create(workspace=workspace_ensure_personal(user=user), name="app")
    publishing = Publishing.objects.create(workspace=project.workspace, project=project, platform="ios")
    kept = attempt_started(0)
    gone = attempt_started(1)
    gone.object_id = publishing.pk
    kept.object_id = publishing.pk + 1
    Attempt.objects.bulk_create([kept, gone])

    project.delete()

    assert list(Attempt.objects.values_list("job_id", flat=True)) == ["job-0"]
