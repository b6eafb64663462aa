"""What the tests check of a row and its job: the rows and RQ's registries tell one story."""

from django.test import Client
from django.urls import reverse
from django_rq.settings import get_queues_map
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from jobs.connection import get_redis
from jobs.queueing import get_queue
from tests.conftest import wait_for


def failed_jobs(queue_name):
    """The jobs of the queue's failed registry, by id."""
    job_ids = FailedJobRegistry(queue=get_queue(queue_name)).get_job_ids()
    return {job.id: job for job in Job.fetch_many(job_ids, connection=get_redis()) if job is not None}


def assert_registry_agrees(row, queue_name, error_field="last_error"):
    """A failed row's job is in the failed registry with the row's error; any other
    finished row's job is not there but in the finished registry. The job commits its row
    and RQ records the job's end just after: a worker in another process may need a moment."""
    row.refresh_from_db()
    if row.status == "failed":
        failed = wait_for(
            lambda: failed_jobs(queue_name).get(row.job_id), timeout=5, message=f"{row}'s job in the failed registry"
        )
        assert getattr(row, error_field) in failed.latest_result().exc_string
    else:
        finished = FinishedJobRegistry(queue=get_queue(queue_name))
        wait_for(
            lambda: row.job_id in finished.get_job_ids(), timeout=5, message=f"{row}'s job in the finished registry"
        )
        assert row.job_id not in failed_jobs(queue_name)


def requeue_from_dashboard(staff_client, queue_name, job_id):
    """What an operator does in django-rq's dashboard: the job's Requeue button."""
    url = reverse("django_rq:requeue_job", args=[get_queues_map()[queue_name], job_id])
    response = staff_client.post(url, {"requeue": "Requeue"})
    assert response.status_code == 302, response.content[:500]


def staff_client(make_user, username="ops"):
    client = Client()
    client.force_login(make_user(username, is_staff=True, is_superuser=True))
    return client


def admin_change(staff_client, page, /, **changes):
    """Post an admin change form as an operator would: every field as the page shows it,
    `changes` typed over them. Returns the response (302 when saved)."""
    form = staff_client.get(page).context["adminform"].form
    data = {}
    for name in form.fields:
        value = changes.get(name, form[name].value())
        if value is True:
            data[name] = "on"
        elif value not in (False, None):
            data[name] = value
    return staff_client.post(page, data)
