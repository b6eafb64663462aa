"""Every write to projects and publishings.

A publishing advances one step per job: start the build, poll it (a new short job every
EAS_POLL_INTERVAL, so a 15-minute build holds no worker), submit it. The row names the
one job allowed to advance it (`job_id`): each step claims the row with a conditional
update on that id and its status, so a duplicate or stale job finds nothing to do.
"""

import logging
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from core.errors import ServiceError
from jobs import lifecycle, platform_events, scheduling
from jobs.connection import ensure_available
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
    publishing = Publishing(
        workspace_id=project.workspace_id,
        project=project,
        requested_by=user,
        platform=platform,
        profile=profile,
        credentials=credentials,
        progress_message="Waiting for a worker",
    )
    lifecycle.start(PUBLISHING, publishing)
    log.info("publishing %s queued as job %s", publishing.pk, publishing.job_id)
    return publishing


def publishing_advance(publishing):
    """Do the next step of a publishing its job holds: start the build, poll it, or submit it."""
    if publishing.credentials is None:
        raise lifecycle.PermanentFailure(CREDENTIALS_GONE)
    step = {
        Publishing.Status.QUEUED: start_build,
        Publishing.Status.BUILDING: poll_build if publishing.eas_build_id else start_build,
        Publishing.Status.SUBMITTING: submit_builds,
    }[publishing.status]
    return step(publishing)


def next_step(publishing, *, delay=None, **changes):
    """Hand the row to the job of its next step (a poll after `delay`, or the submission)."""
    options = {"delay": delay, "rate_limited": False}
    return lifecycle.hand_over(PUBLISHING, publishing, publishing.job_id, options=options, **changes)


def start_build(publishing):
    started = lifecycle.update(
        PUBLISHING,
        publishing,
        publishing.job_id,
        status=Publishing.Status.BUILDING,
        attempts=F("attempts") + 1,
        started_at=publishing.started_at or timezone.now(),
        progress=5,
        progress_message="Starting the EAS build",
    )
    if not started:
        return "claimed by another job"
    with project_source(publishing) as source:
        builds = eas.start_build(
            platform=publishing.platform, profile=publishing.profile, credentials=credentials_of(publishing), cwd=source
        )
    next_step(
        publishing,
        delay=settings.EAS_POLL_INTERVAL,
        eas_build_id=builds[0]["id"],
        builds=[summarize(build) for build in builds],
        last_error="",
        progress=PROGRESS["NEW"],
        progress_message="Build queued on EAS",
    )
    log.info("publishing %s: EAS build %s started", publishing.pk, builds[0]["id"])
    return "build started"


def poll_build(publishing):
    credentials = credentials_of(publishing)
    builds = [eas.view_build(build_id=build["id"], credentials=credentials) for build in publishing.builds]
    summary = [summarize(build) for build in builds]
    failed = [build for build in builds if build.get("status") in eas.FAILED_STATUSES]
    if failed:
        raise lifecycle.PermanentFailure(build_failure_message(failed[0]), builds=summary)
    if all(build.get("status") == "FINISHED" for build in builds):
        next_step(
            publishing,
            status=Publishing.Status.SUBMITTING,
            builds=summary,
            artifact_url=artifact_url(builds[0]),
            progress=90,
            progress_message="Submitting to the store",
        )
        return "build finished"
    if timezone.now() - publishing.started_at > timedelta(seconds=settings.EAS_BUILD_DEADLINE):
        message = f"Build not finished after {settings.EAS_BUILD_DEADLINE}s."
        raise lifecycle.PermanentFailure(message, builds=summary)
    next_step(publishing, delay=settings.EAS_POLL_INTERVAL, builds=summary, **progress_of(builds))
    return "build in progress"


def submit_builds(publishing):
    """Submit each finished build once. Each submission is recorded on the row as soon as
    the CLI confirms it, and its start before the CLI runs: a retry after a crash submits
    only what was not submitted, and asks EAS first about a submission cut short."""
    credentials = credentials_of(publishing)
    builds = list(publishing.builds)
    with project_source(publishing) as source:
        for index, build in enumerate(builds):
            if build.get("submitted_at"):
                continue
            builds[index] = submit_once(publishing, builds, index, credentials, source)
    lifecycle.succeed(
        PUBLISHING,
        publishing,
        publishing.job_id,
        eas_submission_id=builds[0]["submission_id"],
        progress=100,
        progress_message="Submitted",
        credentials=None,
    )
    log.info("publishing %s succeeded (submission %s)", publishing.pk, builds[0]["submission_id"] or "unknown")
    return "submitted"


def submit_once(publishing, builds, index, credentials, source):
    build = builds[index]
    platform = build["platform"].lower()
    submission_id = ""
    if build.get("submit_started_at"):
        submission_id = eas.find_submission(
            platform=platform, build_id=build["id"], credentials=credentials, cwd=source
        )
        if submission_id:
            log.warning("publishing %s: build %s was submitted before a crash: not again", publishing.pk, build["id"])
    if not submission_id:
        builds[index] = {**build, "submit_started_at": timezone.now().isoformat()}
        lifecycle.update(PUBLISHING, publishing, publishing.job_id, builds=builds)
        submission_id = eas.submit(platform=platform, build_id=build["id"], credentials=credentials, cwd=source)
    builds[index] = {**builds[index], "submission_id": submission_id, "submitted_at": timezone.now().isoformat()}
    lifecycle.update(PUBLISHING, publishing, publishing.job_id, builds=builds)
    return builds[index]


@contextmanager
def project_source(publishing):
    """The project's own source tree, where `eas build` and `eas submit` run (a poll needs
    none). A source that may not be used, or a checkout over its size limit, fails the
    publishing at once; other checkout failures (the git host down) are retried."""
    try:
        with eas.project_checkout(publishing.project) as source:
            yield source
    except eas.SourceRefused as exc:
        raise lifecycle.PermanentFailure(str(exc)) from None
    except eas.CheckoutFailed as exc:
        if "EAS_CHECKOUT_MAX_BYTES" in str(exc):
            raise lifecycle.PermanentFailure(str(exc)) from None
        raise


def reopened(publishing):
    """Try a failed publishing again from where it failed: the submission when every
    build finished (builds already submitted are not submitted again), else a new build."""
    if publishing.builds and all(build.get("status") == "FINISHED" for build in publishing.builds):
        return {"status": Publishing.Status.SUBMITTING, "progress": 90, "progress_message": "Submitting to the store"}
    return {
        "status": Publishing.Status.QUEUED,
        "eas_build_id": "",
        "builds": [],
        "artifact_url": "",
        "progress": 0,
        "progress_message": "Waiting for a worker",
    }


CREDENTIALS_GONE = "This publishing's credentials were cleared when it ended; start a new publishing."


def publishing_retry(*, publishing):
    """An operator's Retry of a failed publishing (admin action)."""
    if publishing.credentials is None:
        raise ServiceError(CREDENTIALS_GONE, code="conflict", status_code=409)
    lifecycle.retry(PUBLISHING, publishing)


def credentials_purge():
    """Forget the credentials of publishings that ended: at once on success (submit_builds),
    PUBLISHING_FAILED_CREDENTIALS_TTL seconds after a failure (time to Retry it)."""
    cutoff = timezone.now() - timedelta(seconds=settings.PUBLISHING_FAILED_CREDENTIALS_TTL)
    ended = Publishing.objects.exclude(credentials=None).exclude(status__in=Publishing.ACTIVE_STATUSES)
    return ended.filter(finished_at__lt=cutoff).update(credentials=None)


PURGE_PREFIX = "publishing-purge-"


def housekeeping_schedules():
    """The publishing app's own periodic work, for the scheduler's sync."""
    return [scheduling.Periodic(f"{PURGE_PREFIX}credentials", "publishing.jobs.credentials_purge", 3600)]


def publishing_record_failure(publishing, message):
    """A publishing failed for good: its workspace's platform routes hear of it."""
    platform_events.emit(failure_event(publishing, message))


def failure_event(publishing, message):
    return platform_events.RowEvent(
        platform_events.PUBLISHING_FAILED,
        publishing.workspace_id,
        title=f"Publishing {publishing.pk} of {publishing.project.name} ({publishing.platform}) failed",
        details={
            "publishing": publishing.pk,
            "project": publishing.project.name,
            "platform": publishing.platform,
            "profile": publishing.profile,
            "requested at": platform_events.moment(publishing.created_at),
            "started at": platform_events.moment(publishing.started_at),
            "failed at": platform_events.moment(timezone.now()),
            "EAS build": publishing.eas_build_id or "none",
            "url": platform_events.api_url("publishing-detail", publishing.pk),
        },
        error=message,
    )


def job_options(publishing):
    # Only a build start counts against the queue's start limit, not a poll or a submission.
    starting = publishing.status == Publishing.Status.QUEUED or not publishing.eas_build_id
    return {"rate_limited": starting, "description": f"publishing {publishing.pk} ({publishing.status})"}


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


PUBLISHING = lifecycle.Kind(
    model=Publishing,
    queue=QUEUE,
    func="publishing.jobs.publishing_advance",
    # One job per step: each claims the row in the step's status; build starts count the attempts.
    claimable=Publishing.ACTIVE_STATUSES,
    running=None,
    counts_attempts_on_claim=False,
    related=("project",),
    job_options=job_options,
    reopened=reopened,
    # A lost job is replaced by one for the same step; a build start counts against the limit.
    resumed=lambda publishing: {},
    on_failed=publishing_record_failure,
)
