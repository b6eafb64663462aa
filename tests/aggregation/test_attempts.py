"""Every attempt of a fetch on record: in the API, on its admin page, in the metrics."""

import re

import pytest
from django.urls import reverse

from aggregation.models import Fetch
from jobs.connection import get_redis
from jobs.models import Attempt
from jobs.queueing import enqueue
from tests.conftest import wait_for
from tests.rows import staff_client
from tests.scrape import TOKEN, scrape, value

KIND = "aggregation.Fetch"


@pytest.fixture
def instant_retries(settings):
    """Retries at once, so that a burst worker runs every try."""
    policies = {name: dict(policy) for name, policy in settings.QUEUE_POLICIES.items()}
    policies["content-aggregation"].update(retry_delays=[0, 0], rate_limit=None)
    settings.QUEUE_POLICIES = policies


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def fetch_now(api, source_id, run_worker_burst):
    response = api.post(f"/api/v1/sources/{source_id}/fetch", {})
    assert response.status_code == 202, response.text
    run_worker_burst("content-aggregation")
    return response.json()["id"]


def fetch_in_api(api, source_id, fetch_id):
    fetches = api.get(f"/api/v1/sources/{source_id}/fetches/").json()["results"]
    return next(fetch for fetch in fetches if fetch["id"] == fetch_id)


def test_a_fetch_that_fails_twice_then_succeeds_has_three_attempts_in_the_api_its_admin_page_and_the_metrics(
    api, remote, source_for, run_worker_burst, instant_retries, make_user, live_server, metrics_token
):
    remote.add_posts("mastodon", "public", [{"content": "<p>third time lucky</p>"}])
    source_id = source_for("mastodon", "public")
    remote.misbehave("/api/v1/timelines/public", status=503, times=2)

    fetch_id = fetch_now(api, source_id, run_worker_burst)

    fetch = fetch_in_api(api, source_id, fetch_id)
    assert fetch["status"] == "succeeded" and fetch["attempt_count"] == 3
    attempts = fetch["attempts"]  # newest first
    assert [attempt["outcome"] for attempt in attempts] == ["succeeded", "retrying", "retrying"]
    assert [attempt["number"] for attempt in attempts] == [3, 2, 1]
    assert all("503" in attempt["error"] for attempt in attempts[1:]) and attempts[0]["error"] == ""
    job_id = Fetch.objects.get(pk=fetch_id).job_id
    assert {attempt["job_id"] for attempt in attempts} == {job_id}
    assert {attempt["queue"] for attempt in attempts} == {"content-aggregation"}
    assert all(attempt["ended_at"] >= attempt["started_at"] and attempt["duration"] >= 0 for attempt in attempts)
    assert attempts[0]["started_at"] > attempts[1]["started_at"] > attempts[2]["started_at"]

    page = staff_client(make_user).get(reverse("admin:aggregation_fetch_change", args=[fetch_id]))
    html = page.content.decode()
    assert page.status_code == 200
    assert re.findall(r'<td class="field-outcome">\s*<p>([^<]+)</p>', html) == ["succeeded", "retrying", "retrying"]
    # The job is still in Redis (the finished registry keeps it): the admin links to its dashboard page.
    assert html.count(f'title="{job_id}">{job_id[:12]}</a>') == 3 and "/django-rq/queues/" in html
    worker_name = Attempt.objects.filter(object_id=fetch_id).first().worker
    assert worker_name and worker_name in html

    samples = scrape(live_server.url)
    assert value(samples, "conveyor_attempts_total", kind=KIND, outcome="retrying") == 2
    assert value(samples, "conveyor_attempts_total", kind=KIND, outcome="succeeded") == 1
    assert value(samples, "conveyor_attempt_duration_seconds_count", kind=KIND, outcome="retrying") == 2
    assert value(samples, "conveyor_posts_ingested_total") == 1


def test_the_admin_links_a_job_only_while_redis_has_it(api, remote, source_for, run_worker_burst, make_user):
    source_id = source_for("mastodon", "public")
    fetch_id = fetch_now(api, source_id, run_worker_burst)
    job_id = Fetch.objects.get(pk=fetch_id).job_id
    get_redis().flushdb()  # retention dropped it, or Redis lost its data

    html = staff_client(make_user).get(reverse("admin:aggregation_fetch_change", args=[fetch_id])).content.decode()
    assert f"{job_id[:12]}</a>" not in html
    assert re.search(rf'<td class="field-job">\s*<p><span title="{job_id}">{job_id[:12]}</span></p>', html)


def test_a_429_wait_and_a_stale_duplicate_job_are_attempts_too(api, remote, source_for, run_worker_burst):
    source_id = source_for("mastodon", "public")
    remote.misbehave("/api/v1/timelines/public", status=429, retry_after=1, times=1)
    fetch_id = fetch_now(api, source_id, run_worker_burst)
    waited_job = Attempt.objects.get(object_id=fetch_id).job_id

    enqueue("aggregation.jobs.fetch_run", fetch_id, queue="content-aggregation")  # a stale duplicate
    run_worker_burst("content-aggregation")
    wait_for(
        lambda: run_worker_burst("content-aggregation") or Fetch.objects.get(pk=fetch_id).status == "succeeded",
        timeout=10,
        interval=0.3,
        message="the fetch after Retry-After",
    )

    attempts = fetch_in_api(api, source_id, fetch_id)["attempts"]
    assert [attempt["outcome"] for attempt in attempts] == ["succeeded", "nothing-to-do", "waiting"]
    assert attempts[-1]["job_id"] == waited_job and attempts[0]["job_id"] != waited_job


def test_counters_add_up_across_worker_processes(api, remote, source_for, processes, live_server, metrics_token):
    """Two worker processes share the fetches; /metrics counts every attempt and post once."""
    sources = [source_for("mastodon", f"tag:t{n}") for n in range(6)]
    for n in range(6):
        remote.add_posts("mastodon", f"tag:t{n}", [{"content": f"<p>{n}-{k}</p>"} for k in range(n + 1)])
    remote.misbehave("/api/v1/timelines/tag/", delay=0.4, times=12)  # each fetch holds its worker a while
    before = scrape(live_server.url)

    response = api.post("/api/v1/sources/fetch", {"ids": sources})
    assert response.status_code == 202, response.text
    processes.worker("content-aggregation", processes=2)
    wait_for(
        lambda: Fetch.objects.filter(status="succeeded").count() == 6, timeout=60, message="six fetches to succeed"
    )

    after = scrape(live_server.url)
    workers = set(Attempt.objects.values_list("worker", flat=True))
    assert len(workers) == 2, workers  # both processes ran fetches

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("conveyor_attempts_total", kind=KIND, outcome="succeeded") == 6
    assert grew("conveyor_rows_finished_total", kind=KIND, status="succeeded") == 6
    assert grew("conveyor_posts_ingested_total") == 21  # 1 + 2 + … + 6
    assert grew("conveyor_attempt_duration_seconds_count", kind=KIND, outcome="succeeded") == 6
    assert grew("conveyor_attempt_duration_seconds_bucket", kind=KIND, outcome="succeeded", le="+Inf") == 6
    assert grew("conveyor_attempt_duration_seconds_sum", kind=KIND, outcome="succeeded") >= 0.4
    assert value(after, "conveyor_rows", kind=KIND, status="succeeded") == 6
    assert value(after, "conveyor_rows", kind=KIND, status="queued") == 0
