"""Scheduled polling of sources through rq-scheduler."""

from datetime import UTC, datetime

from rq.job import Job

from aggregation import services
from aggregation.models import Fetch
from jobs import scheduling
from jobs.connection import get_redis
from tests.conftest import wait_for


def scheduled(source_id):
    """(due time, interval) of the source's poll in rq-scheduler, or None."""
    scheduler = scheduling.get_scheduler()
    job_id = services.poll_job_id(source_id)
    score = get_redis().zscore(scheduler.scheduled_jobs_key, job_id)
    if score is None:
        return None
    return score, Job.fetch(job_id, connection=get_redis()).meta.get("interval")


def create_source(api, **extra):
    body = {"name": "feed", "platform": "feed", "url": "https://news.example.com/rss", "poll_interval": 600, **extra}
    response = api.post("/api/v1/sources/", body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_new_source_is_polled_on_its_interval_with_jitter(api):
    before = datetime.now(UTC).timestamp()
    source_id = create_source(api)
    due, interval = scheduled(source_id)
    assert interval == 600
    assert before - 1 <= due <= before + 601


def test_editing_a_source_changes_its_schedule_at_once(api):
    source_id = create_source(api)
    api.client.patch(f"/api/v1/sources/{source_id}", json={"poll_interval": 120})
    assert scheduled(source_id)[1] == 120
    api.client.patch(f"/api/v1/sources/{source_id}", json={"enabled": False})
    assert scheduled(source_id) is None
    api.client.patch(f"/api/v1/sources/{source_id}", json={"enabled": True})
    assert scheduled(source_id)[1] == 120
    assert api.client.delete(f"/api/v1/sources/{source_id}").status_code == 204
    assert scheduled(source_id) is None


def test_a_cron_expression_replaces_the_interval(api):
    source_id = create_source(api, poll_cron="*/15 * * * *")
    job = Job.fetch(services.poll_job_id(source_id), connection=get_redis())
    assert job.meta["cron_string"] == "*/15 * * * *"
    due = datetime.fromtimestamp(get_redis().zscore(scheduling.get_scheduler().scheduled_jobs_key, job.id), UTC)
    assert due.minute % 15 == 0 and due.second == 0
    api.client.patch(f"/api/v1/sources/{source_id}", json={"poll_cron": ""})
    assert scheduled(source_id)[1] == 600
    bad = api.client.patch(f"/api/v1/sources/{source_id}", json={"poll_cron": "every day"})
    assert bad.status_code == 400 and "poll_cron" in bad.json()["error"]["fields"]


def test_the_scheduler_rebuilds_lost_schedules_from_the_database(api):
    kept, dropped = create_source(api), create_source(api, name="other")
    api.client.patch(f"/api/v1/sources/{dropped}", json={"enabled": False})
    get_redis().flushdb()
    scheduler = scheduling.get_scheduler()

    scheduling.sync_provider(scheduler, services.POLL_PREFIX, services.source_schedules)

    assert scheduled(kept)[1] == 600
    assert scheduled(dropped) is None


def test_two_schedulers_at_once_enqueue_each_poll_once(api, processes):
    source_id = create_source(api)
    scheduler = scheduling.get_scheduler()
    job = Job.fetch(services.poll_job_id(source_id), connection=get_redis())
    scheduler.change_execution_time(job, datetime.now(UTC))
    processes.scheduler()
    processes.scheduler()
    processes.worker("content-aggregation", "maintenance")

    wait_for(lambda: Fetch.objects.filter(source_id=source_id).exists(), timeout=15, message="the scheduled poll")
    wait_for(lambda: scheduled(source_id)[0] > datetime.now(UTC).timestamp() + 500, message="next poll")

    fetches = Fetch.objects.filter(source_id=source_id)
    assert fetches.count() == 1 and fetches.get().trigger == "schedule"


def test_a_poll_adds_no_fetch_while_one_is_pending(api):
    source_id = create_source(api)
    assert services.source_poll(source_id=source_id).startswith("fetch")
    assert services.source_poll(source_id=source_id) == "a fetch is already pending"
    assert Fetch.objects.filter(source_id=source_id).count() == 1
