"""A publishing's row and its jobs tell one story: failed rows are failed jobs, requeueing
a failed job tries the publishing again, and each outside effect happens once."""

import os
import signal

from rq.job import Job

from jobs.connection import get_redis
from jobs.worker import alive_key
from publishing.models import Publishing
from tests.conftest import wait_for
from tests.publishing.conftest import wait_until_finished
from tests.rows import assert_registry_agrees, failed_jobs, requeue_from_dashboard, staff_client

QUEUE = "publishing-builds"


def test_an_errored_build_fails_its_job_at_once_with_the_rows_error(
    publish, fake_eas, processes, fast_publishing_policy
):
    fake_eas.configure(polls_until_done=1, final_status="ERRORED", error_message="Gradle build failed")
    publishing = wait_until_finished(publish_and_work(publish, processes))

    assert publishing.status == "failed" and "Gradle build failed" in publishing.last_error
    assert_registry_agrees(publishing, QUEUE)
    assert len(fake_eas.calls_of("build")) == 1


def test_a_cli_that_crashes_on_every_try_fails_the_row_and_the_job(
    publish, fake_eas, processes, fast_publishing_policy
):
    fake_eas.configure(build_fail=99)
    publishing = wait_until_finished(publish_and_work(publish, processes), timeout=40)

    assert publishing.status == "failed" and publishing.attempts == 4
    assert_registry_agrees(publishing, QUEUE)


def test_a_succeeded_publishing_leaves_a_finished_job_and_forgets_its_credentials(
    publish, fake_eas, processes, fast_publishing_policy
):
    fake_eas.configure(polls_until_done=1)
    publishing = wait_until_finished(publish_and_work(publish, processes))

    assert publishing.status == "succeeded", publishing.last_error
    assert_registry_agrees(publishing, QUEUE)
    assert publishing.credentials is None


def test_a_crash_between_the_two_submissions_resubmits_only_the_second(
    publish, fake_eas, processes, fast_publishing_policy
):
    fake_eas.configure(polls_until_done=1, submit_fail_calls=[2])
    publishing = wait_until_finished(publish_and_work(publish, processes, platform="all"))

    assert publishing.status == "succeeded", publishing.last_error
    submitted = [call["argv"][call["argv"].index("--id") + 1] for call in fake_eas.calls_of("submit")]
    first, second = (build["id"] for build in publishing.builds)
    # The first submission was recorded before the second crashed: the retry skipped it.
    assert submitted == [first, second, second]
    assert all(build["submission_id"] and build["submitted_at"] for build in publishing.builds)


def test_requeueing_its_failed_job_from_the_dashboard_tries_the_publishing_again(
    publish, fake_eas, processes, fast_publishing_policy, make_user
):
    fake_eas.configure(build_fail=4, polls_until_done=1)
    publishing = wait_until_finished(publish_and_work(publish, processes), timeout=40)
    assert publishing.status == "failed" and publishing.attempts == 4
    assert_registry_agrees(publishing, QUEUE)  # what the dashboard lists: the job, failed

    requeue_from_dashboard(staff_client(make_user), QUEUE, publishing.job_id)

    # The dashboard requeues the job alone: its row reopens when a worker takes the job.
    wait_for(lambda: Publishing.objects.get(pk=publishing.pk).status != "failed", message="the row to reopen")
    publishing = wait_until_finished(publishing.pk)
    assert publishing.status == "succeeded", publishing.last_error
    assert publishing.attempts == 1  # a fresh count: the failed tries are not this run's
    assert failed_jobs(QUEUE) == {}


def test_requeue_failed_over_the_api_reopens_each_row_at_once(
    publish, fake_eas, processes, fast_publishing_policy, staff_api
):
    fake_eas.configure(polls_until_done=1, final_status="CANCELED")
    failed = [wait_until_finished(publish_and_work(publish, processes)) for _ in range(2)]
    assert {publishing.status for publishing in failed} == {"failed"}
    fake_eas.configure(polls_until_done=1)
    processes.stop_all()

    response = staff_api.post(f"/api/v1/queues/{QUEUE}/requeue-failed")

    assert response.status_code == 200 and response.json()["requeued"] == 2
    for publishing in failed:
        publishing.refresh_from_db()
        assert (publishing.status, publishing.attempts, publishing.last_error) == ("queued", 0, "")
    processes.worker(QUEUE)
    for publishing in failed:
        assert wait_until_finished(publishing.pk).status == "succeeded"


def test_a_requeued_job_whose_row_has_since_succeeded_does_nothing(
    publish, fake_eas, processes, fast_publishing_policy, make_user
):
    fake_eas.configure(polls_until_done=1, final_status="ERRORED")
    publishing = wait_until_finished(publish_and_work(publish, processes))
    failed_job = publishing.job_id
    assert_registry_agrees(publishing, QUEUE)
    Publishing.objects.filter(pk=publishing.pk).update(status="succeeded", job_id="a-later-job")
    builds_before = len(fake_eas.calls_of("build"))

    requeue_from_dashboard(staff_client(make_user), QUEUE, failed_job)

    wait_for(lambda: not failed_jobs(QUEUE) and job_finished(failed_job), message="the requeued job to run")
    publishing.refresh_from_db()
    assert publishing.status == "succeeded" and publishing.job_id == "a-later-job"
    assert len(fake_eas.calls_of("build")) == builds_before


def publish_and_work(publish, processes, platform="ios"):
    publishing_id = publish(platform=platform)
    if not any(process.poll() is None for process in processes.running):
        processes.worker(QUEUE)
    return publishing_id


def job_finished(job_id):
    return Job.fetch(job_id, connection=get_redis()).get_status() == "finished"


def test_a_worker_killed_after_eas_took_the_submission_does_not_submit_it_again(
    publish, fake_eas, processes, fast_publishing_policy
):
    fake_eas.configure(polls_until_done=1, submit_hang_seconds=4)
    publishing_id = publish()
    processes.worker(QUEUE, "maintenance")
    processes.worker(QUEUE, "maintenance")
    processes.scheduler()
    wait_for(fake_eas.submissions, timeout=30, message="EAS to take the submission")
    job = Job.fetch(Publishing.objects.get(pk=publishing_id).job_id, connection=get_redis())
    busy_pid = int(wait_for(lambda: get_redis().get(alive_key(job.worker_name)), message="liveness key"))

    os.kill(busy_pid, signal.SIGKILL)  # EAS has the submission; the CLI never printed it

    publishing = wait_until_finished(publishing_id, timeout=60)
    assert publishing.status == "succeeded", publishing.last_error
    assert len(fake_eas.calls_of("submit")) == 1
    assert fake_eas.calls_of("submit:list"), "the retry asked EAS before submitting again"
    assert publishing.builds[0]["submission_id"]
