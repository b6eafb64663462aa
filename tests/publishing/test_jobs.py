"""Publishing through real worker processes, the real scheduler and a fake `eas` CLI."""

import hashlib
import os
import signal
import time

import pytest
from rq.job import Job

from jobs.connection import get_redis
from jobs.worker import alive_key
from publishing.models import Publishing
from tests.conftest import scheduler_pid, wait_for
from tests.publishing.conftest import SECRET, start_times, wait_until_finished


def test_a_publishing_goes_from_queued_to_succeeded(api, publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(polls_until_done=2)
    publishing_id = publish()
    processes.worker("publishing-builds")

    publishing = wait_until_finished(publishing_id)

    assert publishing.status == "succeeded", publishing.last_error
    assert publishing.attempts == 1
    assert publishing.progress == 100
    assert publishing.eas_build_id and publishing.eas_submission_id
    assert publishing.artifact_url.startswith("https://")
    commands = [call["command"] for call in fake_eas.calls()]
    assert commands == ["build", "build:view", "build:view", "build:view", "submit"]
    token_digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert all(call["expo_token_sha256"] == token_digest for call in fake_eas.calls())
    assert all(SECRET not in " ".join(call["argv"]) for call in fake_eas.calls())
    detail = api.get(f"/api/v1/publishing/{publishing_id}").json()
    assert detail["status"] == "succeeded" and detail["eas_build_id"] == publishing.eas_build_id
    assert SECRET not in processes.logs()
    assert f"publishing {publishing_id}" in processes.logs()


def test_both_platforms_are_built_and_submitted(publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(polls_until_done=1)
    publishing_id = publish(platform="all")
    processes.worker("publishing-builds")
    publishing = wait_until_finished(publishing_id)
    assert publishing.status == "succeeded", publishing.last_error
    assert {build["platform"] for build in publishing.builds} == {"IOS", "ANDROID"}
    assert all(build["submission_id"] for build in publishing.builds)
    assert len(fake_eas.calls_of("submit")) == 2


def test_a_crashing_cli_is_retried_three_times_with_the_configured_delays_then_fails(
    publish, fake_eas, processes, fast_publishing_policy
):
    fake_eas.configure(build_fail=99)
    publishing_id = publish()
    processes.worker("publishing-builds")

    publishing = wait_until_finished(publishing_id, timeout=40)

    assert publishing.status == "failed"
    assert publishing.attempts == 4
    assert "eas build" in publishing.last_error and "exited 1" in publishing.last_error
    starts = start_times(fake_eas, "build")
    assert len(starts) == 4
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    for gap, delay in zip(gaps, fast_publishing_policy["retry_delays"]):
        assert delay - 0.05 <= gap < delay + 3, gaps
    job = Job.fetch(publishing.job_id, connection=get_redis())
    # The row commits its failure inside the job; RQ records the job's failure just after.
    wait_for(lambda: job.get_status(refresh=True) == "failed", timeout=5, message="RQ to mark the job failed")


def test_a_transient_failure_is_retried_and_then_succeeds(publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(build_fail=1, polls_until_done=1)
    publishing_id = publish()
    processes.worker("publishing-builds")
    publishing = wait_until_finished(publishing_id)
    assert publishing.status == "succeeded", publishing.last_error
    assert publishing.attempts == 2
    assert publishing.last_error == ""


@pytest.mark.parametrize("final_status", ["ERRORED", "CANCELED"])
def test_a_failed_build_is_a_permanent_failure_and_not_retried(
    publish, fake_eas, processes, fast_publishing_policy, final_status
):
    fake_eas.configure(polls_until_done=1, final_status=final_status, error_message="Gradle build failed")
    publishing_id = publish()
    processes.worker("publishing-builds")

    publishing = wait_until_finished(publishing_id)

    assert publishing.status == "failed"
    assert final_status in publishing.last_error
    assert len(fake_eas.calls_of("build")) == 1
    assert fake_eas.calls_of("submit") == []
    time.sleep(1.5)  # longer than the first retry delay: nothing runs again
    assert len(fake_eas.calls_of("build")) == 1


def test_sigterm_lets_the_running_job_finish(publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(build_hang_seconds=3)
    publishing_id = publish()
    worker = processes.worker("publishing-builds", env={"EAS_POLL_INTERVAL": 60})
    wait_for(lambda: fake_eas.calls_of("build"), message="the build command to start")

    worker.send_signal(signal.SIGTERM)
    exit_code = worker.wait(20)

    assert exit_code == 0
    publishing = Publishing.objects.get(pk=publishing_id)
    assert publishing.status == "building" and publishing.eas_build_id, publishing.last_error
    assert publishing.attempts == 1


def test_a_worker_killed_mid_job_is_replaced_via_the_reconciler(publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(build_hang_seconds=4, polls_until_done=1)
    publishing_id = publish()
    processes.worker("publishing-builds", "maintenance")
    processes.worker("publishing-builds", "maintenance")
    processes.scheduler()
    wait_for(lambda: fake_eas.calls_of("build"), message="the build command to start")
    job = Job.fetch(Publishing.objects.get(pk=publishing_id).job_id, connection=get_redis())
    busy_pid = int(wait_for(lambda: get_redis().get(alive_key(job.worker_name)), message="liveness key"))

    os.kill(busy_pid, signal.SIGKILL)
    killed_at = time.time()

    publishing = wait_until_finished(publishing_id, timeout=45)
    assert publishing.status == "succeeded", publishing.last_error
    restarted_at = start_times(fake_eas, "build")[1]
    assert restarted_at - killed_at < 30
    # The killed worker's `eas build` died with it: it never ended (its 4 s were long over),
    # so it did not run on beside the next try's, past the queue's cap of one.
    killed_call, *later_calls = fake_eas.intervals()
    assert killed_call[1] is None and all(end is not None for _, end in later_calls), fake_eas.intervals()


def test_a_missing_eas_cli_fails_the_publishing_with_a_clear_error(publish, fake_eas, run_worker_burst, settings):
    settings.EAS_CLI = "eas-not-installed-here"
    publishing_id = publish()

    run_worker_burst("publishing-builds")

    publishing = Publishing.objects.get(pk=publishing_id)
    assert "EAS CLI not found: 'eas-not-installed-here' (set EAS_CLI)" in publishing.last_error
    assert fake_eas.calls() == []


def test_rows_left_unfinished_by_a_redis_flush_are_enqueued_again(publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(polls_until_done=1)
    publishing_ids = [publish() for _ in range(3)]
    get_redis().flushall()

    flushed_at = time.monotonic()
    processes.scheduler()
    processes.worker("publishing-builds", "maintenance")

    for publishing_id in publishing_ids:
        assert wait_until_finished(publishing_id, timeout=60).status == "succeeded"
    assert time.monotonic() - flushed_at < 60


def test_build_starts_are_rate_limited_across_all_workers(publish, fake_eas, processes, settings):
    policies = dict(settings.QUEUE_POLICIES)
    policies["publishing-builds"] = {**policies["publishing-builds"], "rate_limit": "5/3", "retry_delays": [1, 1, 1]}
    settings.QUEUE_POLICIES = policies
    fake_eas.configure(polls_until_done=0)
    publishing_ids = [publish() for _ in range(8)]
    processes.worker("publishing-builds", processes=2)

    for publishing_id in publishing_ids:
        assert wait_until_finished(publishing_id, timeout=40).status == "succeeded"

    starts = sorted(start_times(fake_eas, "build"))
    assert len(starts) == 8
    for first in starts:
        # CLI start times trail the slot grants by a process start: allow half a second of it.
        assert sum(1 for at in starts if first <= at < first + 2.5) <= 5, starts
    assert starts[-1] - starts[0] >= 2.9
    assert all(Publishing.objects.get(pk=pk).attempts == 1 for pk in publishing_ids)


def polls_after(fake_eas, moment):
    return [at for at in start_times(fake_eas, "build:view") if at > moment]


def test_polls_go_on_when_the_scheduler_process_is_killed(publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(polls_until_done=8)
    publishing_ids = [publish(), publish()]
    processes.worker("publishing-builds", processes=2)
    wait_for(lambda: len(fake_eas.calls_of("build:view")) >= 2, message="the polls to start")

    os.kill(wait_for(lambda: scheduler_pid("publishing-builds")), signal.SIGKILL)
    killed_at = time.time()

    for publishing_id in publishing_ids:
        assert wait_until_finished(publishing_id, timeout=40).status == "succeeded"
    assert polls_after(fake_eas, killed_at)[0] - killed_at < 15


def test_polls_go_on_when_a_worker_is_killed_with_its_scheduler_process(
    publish, fake_eas, processes, fast_publishing_policy
):
    import psutil

    fake_eas.configure(polls_until_done=8)
    publishing_ids = [publish(), publish()]
    processes.worker("publishing-builds", "maintenance")
    processes.worker("publishing-builds", "maintenance")
    processes.scheduler()
    wait_for(lambda: len(fake_eas.calls_of("build:view")) >= 2, message="the polls to start")

    doomed_scheduler = wait_for(lambda: scheduler_pid("publishing-builds"))
    os.kill(psutil.Process(doomed_scheduler).ppid(), signal.SIGKILL)
    os.kill(doomed_scheduler, signal.SIGKILL)
    killed_at = time.time()

    for publishing_id in publishing_ids:
        assert wait_until_finished(publishing_id, timeout=60).status == "succeeded"
    assert polls_after(fake_eas, killed_at)[0] - killed_at < 15
    # The surviving worker took the lock over and runs a scheduler of its own.
    wait_for(lambda: (scheduler_pid("publishing-builds") or doomed_scheduler) != doomed_scheduler, timeout=15)
