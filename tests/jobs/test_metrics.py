"""GET /metrics: refused without its token, and with it django-rq's queue metrics and the
platform's counters, moving as real jobs run."""

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from jobs import reconciler
from jobs.queueing import enqueue
from publishing.models import Project, Publishing
from tests.jobs import tasks
from tests.scrape import TOKEN, scrape, value
from workspaces.services import workspace_ensure_personal


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def test_without_metrics_token_the_endpoint_does_not_exist(live_server, settings):
    settings.METRICS_TOKEN = ""
    response = httpx.get(f"{live_server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Token {TOKEN}", f"Basic {TOKEN}", "Bearer"])
def test_it_refuses_a_missing_or_wrong_token(live_server, metrics_token, header):
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{live_server.url}/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "rq_jobs" not in response.text


def test_it_shows_django_rqs_queue_metrics_and_rows_by_status(live_server, metrics_token, transactional_db):
    enqueue(tasks.record, "waiting", queue="notifications")

    samples = scrape(live_server.url)

    assert value(samples, "rq_jobs", queue="notifications", status="queued") == 1
    assert value(samples, "rq_jobs", queue="publishing-builds", status="failed") == 0
    assert ("rq_jobs", frozenset({("queue", "maintenance"), ("status", "started")})) in samples
    for kind in ("publishing.Publishing", "aggregation.Fetch", "aggregation.UserAction", "alerts.RuleRun"):
        assert ("conveyor_rows", frozenset({("kind", kind), ("status", "failed")})) in samples
    assert ("conveyor_rows", frozenset({("kind", "alerts.AlertDelivery"), ("status", "duplicate")})) in samples


def test_rate_limit_waits_are_counted_where_the_worker_defers_a_job(
    live_server, metrics_token, transactional_db, policies, run_worker_burst
):
    policies("notifications", rate_limit="1/60")
    for label in ("first", "second", "third"):
        enqueue(tasks.record, label, queue="notifications")

    run_worker_burst("notifications")

    assert [label for label, _ in tasks.ran()] == ["first"]
    assert value(scrape(live_server.url), "conveyor_rate_limit_waits_total", queue="notifications") == 2


def test_reconciler_recoveries_are_counted(live_server, metrics_token, make_user):
    user = make_user("carol")
    project = Project.objects.create(workspace=workspace_ensure_personal(user=user), name="app")
    Publishing.objects.create(
        workspace=project.workspace, project=project, requested_by=user, platform="ios", job_id="lost-job"
    )
    Publishing.objects.update(updated_at=timezone.now() - timedelta(minutes=1))

    assert reconciler.reconcile(grace=5) == 1

    samples = scrape(live_server.url)
    assert value(samples, "conveyor_reconciler_resumed_total", tracked="publishing.Publishing") == 1
    assert value(samples, "conveyor_rows", kind="publishing.Publishing", status="queued") == 1
