import pytest
from django.test import Client

from publishing.models import Project, Publishing
from workspaces.services import workspace_ensure_personal


@pytest.fixture
def failed_publishing(make_user):
    user = make_user("dave")
    project = Project.objects.create(workspace=workspace_ensure_personal(user=user), name="app")
    return Publishing.objects.create(
        workspace=project.workspace,
        project=project,
        requested_by=user,
        platform="android",
        status="failed",
        last_error="EAS build 1 ERRORED: GRADLE: boom",
        job_id="old-job",
        credentials={"expo_token": "admin-secret-token"},
        progress=50,
    )


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/publishing/publishing/",
        "/admin/publishing/project/",
        "/admin/workspaces/workspace/",
        "/admin/jobs/pausedqueue/",
        "/django-rq/",
    ],
)
def test_operator_pages_render(staff, failed_publishing, url):
    response = staff.get(url)
    assert response.status_code == 200


def test_the_publishing_page_shows_status_error_progress_and_job_link_but_no_secret(staff, failed_publishing):
    response = staff.get(f"/admin/publishing/publishing/{failed_publishing.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "GRADLE: boom" in page
    assert '<progress value="50"' in page
    assert "/django-rq/queues/" in page and "old-job" in page
    assert "admin-secret-token" not in page


def test_the_queue_dashboard_is_for_staff_only(make_user):
    client = Client()
    client.force_login(make_user("eve"))
    response = client.get("/django-rq/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_retry_action_queues_a_failed_publishing_again(staff, failed_publishing):
    response = staff.post(
        "/admin/publishing/publishing/",
        {"action": "retry_failed", "_selected_action": [failed_publishing.pk]},
        follow=True,
    )
    assert response.status_code == 200
    failed_publishing.refresh_from_db()
    assert failed_publishing.status == "queued"
    assert failed_publishing.job_id != "old-job"
    assert failed_publishing.progress == 0
    from jobs.queueing import get_queue

    assert get_queue("publishing-builds").get_job_ids() == [failed_publishing.job_id]


def test_the_admin_index_draws_the_queues(staff):
    from jobs import services

    services.queue_pause(name="notifications")
    page = staff.get("/admin/").content.decode()
    assert 'id="queue-overview"' in page
    assert "publishing-builds" in page and "0/5 per 60s" in page
    assert "paused" in page
