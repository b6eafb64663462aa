"""A publishing's attempts: a SIGKILLed worker's attempt is on record as lost once the
reconciler resumes the row, and the admin page and the API show every attempt."""

import os
import re
import signal

from django.urls import reverse
from rq.job import Job

from jobs import reconciler
from jobs.connection import get_redis
from jobs.models import Attempt
from jobs.worker import alive_key
from publishing.models import Publishing
from tests.conftest import wait_for
from tests.publishing.conftest import wait_until_finished
from tests.rows import staff_client


def test_a_sigkilled_workers_attempt_is_lost_once_the_reconciler_resumes_the_row(
    api, publish, fake_eas, processes, fast_publishing_policy, make_user
):
    fake_eas.configure(build_hang_seconds=30, polls_until_done=1)
    publishing_id = publish()
    worker = processes.worker("publishing-builds")
    wait_for(lambda: fake_eas.calls_of("build"), message="the build command to start")
    killed_job = Job.fetch(Publishing.objects.get(pk=publishing_id).job_id, connection=get_redis())

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_for(lambda: not get_redis().exists(alive_key(killed_job.worker_name)), message="the liveness key to expire")
    assert not Attempt.objects.exists()  # the killed worker wrote nothing
    assert reconciler.reconcile(grace=0) == 1

    lost = Attempt.objects.get()
    assert (lost.outcome, lost.job_id, lost.worker, lost.number) == ("lost", killed_job.id, killed_job.worker_name, 1)
    assert lost.started_at == killed_job.started_at and lost.ended_at > lost.started_at
    assert killed_job.worker_name in lost.error
    assert reconciler.reconcile(grace=0) == 0 and Attempt.objects.count() == 1  # recorded once

    fake_eas.configure(polls_until_done=1)
    processes.worker("publishing-builds")
    assert wait_until_finished(publishing_id).status == "succeeded"

    outcomes = [attempt["outcome"] for attempt in api.get(f"/api/v1/publishing/{publishing_id}").json()["attempts"]]
    assert outcomes == ["succeeded", "continued", "continued", "continued", "lost"]  # submit, polls, build, killed
    html = staff_client(make_user).get(reverse("admin:publishing_publishing_change", args=[publishing_id]))
    assert re.findall(r'<td class="field-outcome">\s*<p>([^<]+)</p>', html.content.decode()) == outcomes
