"""Every write to projects and publishings.

A publishing advances one step per job: start the build, poll it (a new short job every
EAS_POLL_INTERVAL, so a 15-minute build holds no worker), submit it. The row names the
one job allowed to advance it (`job_id`): each step claims the row with a conditional
update on that id and its status, so a duplicate or stale job finds nothing to do.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import ServiceError
from jobs.connection import ensure_available
from jobs.queueing import enqueue
from workspaces.services import workspace_for_write, workspaces_of

from . import eas
from .models import Project, Publishing

log = logging.getLogger("conveyor.publishing")

QUEUE = "publishing-builds"

PROGRESS = {"NEW": 10, "IN_QUEUE": 20, "IN_PROGRESS": 50, "PENDING_CANCEL": 50, "FINISHED": 80}


def project_create(*, user, name, workspace_id=None, repository_url="", repository_ref="", directory=""):
    workspace = workspace_for_write(user=user, workspace_id=workspace_id)
    if Project.objects.filter(workspace=workspace, name=name).exists():
        raise ServiceError("A project with this name exists.", fields={"name": ["A project with this name exists."]})
    source = {"repository_url": repository_url, "repository_ref": repository_ref, "directory": directory}
    return Project.objects.create(workspace=workspace, name=name, **source)


def publishing_initiate(*, user, project_id, platform, profile, credentials):
    """Create a queued publishing and enqueue its build once the row is committed.

    Raises QueueUnavailable (nothing written) when Redis does not answer.
    """
    project = Project.objects.filter(id=project_id, workspace__in=workspaces_of(user)).first()
    if project is None:
        raise ServiceError("No such project.", fields={"project": ["No such project."]})
    ensure_available()
    with transaction.atomic():
        publishing = Publishing.objects.create(
            workspace=project.workspace,
            project=project,
            requested_by=user,
            platform=platform,
            profile=profile,
            credentials=credentials,
            progress_message="Waiting for a worker",
        )
        publishing.job_id = enqueue_step(publishing, rate_limited=True)
        publishing.save(update_fields=["job_id"])
    log.info("publishing %s queued as job %s", publishing.pk, publishing.job_id)
    return publishing


def enqueue_step(publishing, *, rate_limited=False, delay=None):
    return enqueue(
        "publishing.jobs.publishing_advance",
        publishing.pk,
        queue=QUEUE,
        delay=delay,
        rate_limited=rate_limited,
        description=f"publishing {publishing.pk} ({publishing.status})",
    )


def hand_over(publishing, *, from_job, rate_limited=False, delay=None, **changes):
    """Give the row to a new job (next step) if `from_job` still holds it; write `changes`."""
    with transaction.atomic():
        new_job = enqueue_step(publishing, rate_limited=rate_limited, delay=delay)
        claimed = Publishing.objects.filter(pk=publishing.pk, job_id=from_job).update(
            job_id=new_job, updated_at=timezone.now(), **changes
        )
        if not claimed:
            transaction.set_rollback(True)
    return bool(claimed)


def claim(publishing_id, job_id, current_status, **changes):
    """Conditional update: True if this job holds the row in `current_status` (then `changes` are written)."""
    rows = Publishing.objects.filter(pk=publishing_id, job_id=job_id, status=current_status)
    return rows.update(updated_at=timezone.now(), **changes) == 1


def publishing_advance(*, publishing_id, job_id, last_attempt):
    """Do the next step of this publishing, if `job_id` holds it. Safe to run twice."""
    publishing = Publishing.objects.filter(pk=publishing_id, job_id=job_id).first()
    if publishing is None or publishing.is_finished:
        return "nothing to do"
    step = {
        Publishing.Status.QUEUED: start_build,
        Publishing.Status.BUILDING: poll_build if publishing.eas_build_id else start_build,
        Publishing.Status.SUBMITTING: submit_builds,
    }[publishing.status]
    try:
        return step(publishing, job_id)
    except Exception as exc:
        # Any failure is retried by the queue; the last one fails the row, so that a bad
        # row cannot be resumed and crash again forever.
        record_transient_failure(publishing, job_id, describe_error(exc), final=last_attempt)
        raise


def start_build(publishing, job_id):
    if not claim(
        publishing.pk,
        job_id,
        publishing.status,
        status=Publishing.Status.BUILDING,
        attempts=publishing.attempts + 1,
        started_at=publishing.started_at or timezone.now(),
        progress=5,
        progress_message="Starting the EAS build",
    ):
        return "claimed by another job"
    builds = eas.start_build(
        platform=publishing.platform, profile=publishing.profile, credentials=credentials_of(publishing)
    )
    summary = [summarize(build) for build in builds]
    hand_over(
        publishing,
        from_job=job_id,
        delay=settings.EAS_POLL_INTERVAL,
        eas_build_id=builds[0]["id"],
        builds=summary,
        last_error="",
        progress=PROGRESS["NEW"],
        progress_message="Build queued on EAS",
    )
    log.info("publishing %s: EAS build %s started", publishing.pk, builds[0]["id"])
    return "build started"


def poll_build(publishing, job_id):
    credentials = credentials_of(publishing)
    builds = [eas.view_build(build_id=build["id"], credentials=credentials) for build in publishing.builds]
    summary = [summarize(build) for build in builds]
    failed = [build for build in builds if build.get("status") in eas.FAILED_STATUSES]
    if failed:
        return fail(publishing, job_id, build_failure_message(failed[0]), builds=summary)
    if all(build.get("status") == "FINISHED" for build in builds):
        hand_over(
            publishing,
            from_job=job_id,
            status=Publishing.Status.SUBMITTING,
            builds=summary,
            artifact_url=artifact_url(builds[0]),
            progress=90,
            progress_message="Submitting to the store",
        )
        return "build finished"
    if timezone.now() - publishing.started_at > timedelta(seconds=settings.EAS_BUILD_DEADLINE):
        return fail(publishing, job_id, f"Build not finished after {settings.EAS_BUILD_DEADLINE}s.", builds=summary)
    hand_over(publishing, from_job=job_id, delay=settings.EAS_POLL_INTERVAL, builds=summary, **progress_of(builds))
    return "build in progress"


def submit_builds(publishing, job_id):
    credentials = credentials_of(publishing)
    submission_ids = [
        eas.submit(platform=build["platform"].lower(), build_id=build["id"], credentials=credentials)
        for build in publishing.builds
    ]
    claim(
        publishing.pk,
        job_id,
        Publishing.Status.SUBMITTING,
        status=Publishing.Status.SUCCEEDED,
        eas_submission_id=submission_ids[0],
        builds=[{**build, "submission_id": sid} for build, sid in zip(publishing.builds, submission_ids)],
        progress=100,
        progress_message="Submitted",
        last_error="",
        finished_at=timezone.now(),
    )
    log.info("publishing %s succeeded (submission %s)", publishing.pk, submission_ids[0] or "unknown")
    return "submitted"


def fail(publishing, job_id, message, **changes):
    claim(
        publishing.pk,
        job_id,
        publishing.status,
        status=Publishing.Status.FAILED,
        last_error=message,
        progress_message="Failed",
        finished_at=timezone.now(),
        **changes,
    )
    log.warning("publishing %s failed: %s", publishing.pk, message)
    return "failed"


def record_transient_failure(publishing, job_id, message, *, final):
    """Keep the error on the row; after the last retry the publishing has failed."""
    if final:
        fail(Publishing.objects.get(pk=publishing.pk), job_id, message)
        return
    Publishing.objects.filter(pk=publishing.pk, job_id=job_id).update(last_error=message, updated_at=timezone.now())
    log.warning("publishing %s: transient failure, will retry: %s", publishing.pk, message)


def describe_error(exc):
    if isinstance(exc, eas.EasCommandError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def publishing_resume(publishing):
    """Reconciler: this active row has no live job; give it a new one for its current step."""
    starting = publishing.status == Publishing.Status.QUEUED or not publishing.eas_build_id
    hand_over(publishing, from_job=publishing.job_id, rate_limited=starting)


@transaction.atomic
def publishing_retry(*, publishing):
    """Start a failed publishing again from the beginning (admin action)."""
    if publishing.status != Publishing.Status.FAILED:
        raise ServiceError("Only a failed publishing can be retried.", code="conflict", status_code=409)
    ensure_available()
    hand_over(
        publishing,
        from_job=publishing.job_id,
        rate_limited=True,
        status=Publishing.Status.QUEUED,
        eas_build_id="",
        builds=[],
        artifact_url="",
        progress=0,
        progress_message="Waiting for a worker",
        finished_at=None,
    )


def credentials_of(publishing):
    return eas.Credentials.from_dict(publishing.credentials or {})


def summarize(build):
    return {
        "id": build.get("id"),
        "platform": build.get("platform", ""),
        "status": build.get("status", ""),
        "artifact_url": artifact_url(build),
    }


def artifact_url(build):
    artifacts = build.get("artifacts") or {}
    return artifacts.get("buildUrl") or artifacts.get("applicationArchiveUrl") or ""


def build_failure_message(build):
    error = build.get("error") or {}
    detail = error.get("message") or "no message"
    return f"EAS build {build.get('id')} {build.get('status')}: {error.get('errorCode', 'UNKNOWN')}: {detail}"


def progress_of(builds):
    slowest = min(builds, key=lambda build: PROGRESS.get(build.get("status"), 0))
    status = slowest.get("status", "")
    message = f"EAS build {status.lower().replace('_', ' ')}"
    if status == "IN_QUEUE" and slowest.get("queuePosition") is not None:
        message += f" (position {slowest['queuePosition']}, ~{slowest.get('estimatedWaitTimeLeftSeconds', '?')}s)"
    return {"progress": PROGRESS.get(status, 10), "progress_message": message}
