import time

import pytest
from rq.job import Job

from jobs.connection import get_redis
from jobs.queueing import get_queue
from publishing.models import Project, Publishing
from tests import redis_server

SECRET = "expo-secret-token-0123456789"


def test_health_needs_no_auth_and_reports_each_part(live_server, transactional_db):
    import httpx

    response = httpx.get(f"{live_server.url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == body["cache"] == body["queue"] == "connected"
    assert body["workers"] == 0
    assert "T" in body["timestamp"]


def test_every_api_endpoint_needs_authentication(live_server, transactional_db):
    import httpx

    for path in ["/api/v1/projects/", "/api/v1/publishing/", "/api/v1/publishing/1", "/api/v1/queues/"]:
        response = httpx.get(f"{live_server.url}{path}")
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"
    response = httpx.post(f"{live_server.url}/api/v1/publishing/initiate", json={})
    assert response.status_code == 401


def test_initiate_answers_202_at_once_and_enqueues_one_job(api):
    project = api.create_project()
    started = time.monotonic()
    response = api.initiate(project)
    assert time.monotonic() - started < 1
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["url"].endswith(f"/api/v1/publishing/{body['id']}")
    assert response.headers["Location"] == body["url"]
    publishing = Publishing.objects.get(pk=body["id"])
    assert get_queue("publishing-builds").get_job_ids() == [publishing.job_id]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"platform": "ios", "credentials": {"expo_token": "t"}}, "project"),
        ({"project": "one", "platform": "ios", "credentials": {"expo_token": "t"}}, "project"),
        ({"project": 1, "platform": "windows", "credentials": {"expo_token": "t"}}, "platform"),
        ({"project": 1, "platform": "ios"}, "credentials"),
        ({"project": 1, "platform": "ios", "credentials": {}}, "credentials"),
        ({"project": 1, "platform": "ios", "credentials": "token"}, "credentials"),
        ({"project": 1, "platform": "ios", "profile": "../etc", "credentials": {"expo_token": "t"}}, "profile"),
        ({"project": 1, "platform": "ios", "credentials": {"expo_token": "t"}, "when": "now"}, "when"),
        ({"project": 999, "platform": "ios", "credentials": {"expo_token": "t"}}, "project"),
    ],
)
def test_bad_input_is_a_400_with_field_errors_and_enqueues_nothing(api, body, field):
    if body.get("project") == 1:
        body["project"] = api.create_project()
    response = api.post("/api/v1/publishing/initiate", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert Publishing.objects.count() == 0
    assert get_queue("publishing-builds").count == 0


def test_a_body_that_is_not_json_is_a_400(api):
    response = api.client.post(
        "/api/v1/publishing/initiate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_duplicate_project_name_is_a_400(api):
    api.create_project("app")
    response = api.post("/api/v1/projects/", {"name": "app", "directory": "app"})
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]
    sourceless = api.post("/api/v1/projects/", {"name": "other"})
    assert sourceless.status_code == 400 and "directory" in sourceless.json()["error"]["fields"]


def test_redis_down_is_a_fast_503_that_changes_nothing_and_recovers(api):
    project = api.create_project()
    redis_server.stop_redis()
    try:
        started = time.monotonic()
        response = api.initiate(project)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "queue_unavailable"
        assert elapsed < 1.0
        assert Publishing.objects.count() == 0
        health = api.get("/health")
        assert health.status_code == 503
        assert health.json()["queue"] == "unavailable"
        assert health.json()["status"] == "degraded"
    finally:
        redis_server.start_redis()
    response = api.initiate(project)
    assert response.status_code == 202
    assert api.get("/health").status_code == 200


def test_a_user_sees_only_their_workspace(api, other_api):
    project = api.create_project()
    publishing_id = api.initiate(project).json()["id"]

    assert other_api.get(f"/api/v1/publishing/{publishing_id}").status_code == 404
    assert other_api.get("/api/v1/publishing/").json()["results"] == []
    assert other_api.get("/api/v1/projects/").json()["results"] == []
    response = other_api.initiate(project)
    assert response.status_code == 400
    assert "project" in response.json()["error"]["fields"]
    assert api.get(f"/api/v1/publishing/{publishing_id}").status_code == 200


def test_a_user_with_no_workspace_gets_a_personal_one(api):
    workspaces = api.get("/api/v1/workspaces/").json()["results"]
    assert len(workspaces) == 1 and workspaces[0]["personal"]


def test_the_list_filters_by_project_and_status_and_paginates(api):
    first, second = api.create_project("one"), api.create_project("two")
    api.initiate(first)
    api.initiate(second)
    Publishing.objects.filter(project_id=second).update(status="failed")

    assert api.get("/api/v1/publishing/", params={"project": first}).json()["count"] == 1
    failed = api.get("/api/v1/publishing/", params={"status": "failed"}).json()
    assert [row["project"] for row in failed["results"]] == [second]
    assert api.get("/api/v1/publishing/").json()["count"] == 2
    bad = api.get("/api/v1/publishing/", params={"status": "bogus"})
    assert bad.status_code == 400 and "status" in bad.json()["error"]["fields"]


def test_secrets_are_never_in_responses_job_arguments_or_the_database_in_clear(api):
    project = api.create_project()
    response = api.initiate(project, token=SECRET)
    publishing = Publishing.objects.get(pk=response.json()["id"])

    detail = api.get(f"/api/v1/publishing/{publishing.pk}")
    listing = api.get("/api/v1/publishing/")
    assert SECRET not in response.text + detail.text + listing.text
    assert "credentials" not in detail.json()

    job = Job.fetch(publishing.job_id, connection=get_redis())
    assert job.args == (publishing.pk,)
    for key in get_redis().keys("*"):
        if get_redis().type(key) == b"hash":
            assert SECRET.encode() not in b"".join(get_redis().hgetall(key).values())

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM publishing_publishing WHERE id = %s", [publishing.pk])
        stored = cursor.fetchone()[0]
    assert SECRET not in stored
    assert publishing.credentials == {"expo_token": SECRET}


def test_queue_operations_are_for_staff_only(api, staff_api):
    assert api.get("/api/v1/queues/").status_code == 403
    assert api.post("/api/v1/queues/publishing-builds/pause").status_code == 403
    stats = staff_api.get("/api/v1/queues/").json()["queues"]
    assert {row["name"] for row in stats} >= {"publishing-builds", "content-aggregation", "alerts-dispatch"}
    assert staff_api.post("/api/v1/queues/publishing-builds/pause", {"reason": "store outage"}).status_code == 200
    paused = {row["name"]: row["paused"] for row in staff_api.get("/api/v1/queues/").json()["queues"]}
    assert paused["publishing-builds"] and not paused["notifications"]
    assert staff_api.post("/api/v1/queues/publishing-builds/resume").status_code == 200
    assert staff_api.post("/api/v1/queues/nope/pause").status_code == 404


# --- a project's source ---------------------------------------------------------------------


def test_a_project_names_its_repository_and_ref(api, git_server, git_http_allowed):
    url = git_server.repository("api-app", {"app.json": "{}"})
    response = api.post("/api/v1/projects/", {"name": "app", "repository_url": url, "repository_ref": "main"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["repository_url"], body["repository_ref"], body["directory"]) == (url, "main", "")
    project = Project.objects.get(pk=body["id"])
    assert (project.repository_url, project.repository_ref) == (url, "main")


def test_a_project_names_a_directory_under_the_root(api, tmp_path, settings):
    (tmp_path / "demo").mkdir()
    settings.EAS_PROJECTS_ROOT = str(tmp_path)
    response = api.post("/api/v1/projects/", {"name": "app", "directory": "demo"})
    assert response.status_code == 201, response.text
    assert Project.objects.get(pk=response.json()["id"]).directory == "demo"


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"repository_url": "file:///srv/app.git"}, "repository_url", "only https"),
        ({"repository_url": "http://example.com/app.git"}, "repository_url", "only https"),
        ({"repository_url": "https://u:p@example.com/app.git"}, "repository_url", "credentials"),
        (
            {"repository_url": "https://example.com/a.git", "repository_ref": "--upload-pack=x"},
            "repository_ref",
            "not a",
        ),
        ({"repository_ref": "main"}, "repository_ref", "needs a repository_url"),
        ({"repository_url": "https://example.com/a.git", "directory": "demo"}, "directory", "not both"),
        ({"directory": "../etc"}, "directory", "not inside"),
        ({"directory": "/etc"}, "directory", "relative path"),
        ({"source": "https://example.com/a.git"}, "source", "Unknown field"),
    ],
)
def test_a_bad_source_is_a_400_that_creates_nothing(api, tmp_path, settings, body, field, message):
    (tmp_path / "demo").mkdir()
    settings.EAS_PROJECTS_ROOT = str(tmp_path)
    response = api.post("/api/v1/projects/", {"name": "app", **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and message in " ".join(error["fields"][field])
    assert not Project.objects.exists()


def test_a_repository_on_a_private_address_is_a_400(api, git_server, git_http_allowed, settings):
    settings.ALLOW_PRIVATE_FETCH = False
    url = git_server.repository("api-private", {"app.json": "{}"})
    response = api.post("/api/v1/projects/", {"name": "app", "repository_url": url})
    assert response.status_code == 400
    assert "non-public address" in response.json()["error"]["fields"]["repository_url"][0]
    assert not Project.objects.exists()
