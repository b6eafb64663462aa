"""Queue charts: counters the workers keep in Redis, samples of the backlog, the SVG drawn
from them on the admin index and a queue's page, and the busiest rate-limit keys."""

import re
import time

from jobs import charts, ratelimit, services
from jobs.connection import get_redis
from jobs.policies import RateLimit
from jobs.queueing import enqueue
from jobs.scheduling import platform_jobs
from tests.jobs import tasks


def ended_now(queue):
    """This minute's and this hour's counts of the queue (the last bucket of each span)."""
    return charts.jobs_ended(charts.MINUTES)[queue][-1][1], charts.jobs_ended(charts.HOURS)[queue][-1][1]


def test_a_worker_counts_each_job_end_by_minute_and_by_hour(transactional_db, policies, run_worker_burst):
    policies("notifications", retry_delays=[])
    policies("user-actions", retry_delays=[30])
    for label in "abc":
        enqueue(tasks.record, label, queue="notifications")
    enqueue(tasks.fail_always, "boom", queue="notifications")
    enqueue(tasks.fail_always, "again", queue="user-actions")

    run_worker_burst("notifications", "user-actions")

    minute, hour = ended_now("notifications")
    assert minute == hour == {"finished": 3, "retried": 0, "failed": 1}
    assert ended_now("user-actions")[0] == {"finished": 0, "retried": 1, "failed": 0}


def test_the_day_sums_each_hours_minutes(transactional_db):
    hour = charts.HOURS.start_of(time.time())
    with get_redis().pipeline() as pipe:
        for at, outcome in [
            (hour + 5, "finished"),
            (hour + 65, "finished"),
            (hour + 3599, "failed"),
            (hour - 1, "failed"),
        ]:
            charts.count_job_end(pipe, "notifications", outcome, at=at)
        pipe.execute()

    *_, (earlier, before), (start, this_hour) = charts.jobs_ended(charts.HOURS, now=hour + 3599)["notifications"]

    assert (start, this_hour) == (hour, {"finished": 2, "retried": 0, "failed": 1})
    assert (earlier, before) == (hour - 3600, {"finished": 0, "retried": 0, "failed": 1})


def bucket_ttl(now):
    return get_redis().ttl(charts.MINUTES.counts_key(charts.MINUTES.start_of(now)))


def test_the_counts_survive_a_worker_restart_and_expire_by_themselves(transactional_db, run_worker_burst, monkeypatch):
    monkeypatch.setattr(charts, "_expiring", {})  # a fresh worker process
    enqueue(tasks.record, "first", queue="notifications")
    run_worker_burst("notifications")
    enqueue(tasks.record, "second", queue="notifications")
    run_worker_burst("notifications")  # a new worker process adds to the same buckets

    assert ended_now("notifications")[0]["finished"] == 2
    # A minute bucket serves the day's chart: it lives a day and two hours from its start.
    assert 25 * 3600 < bucket_ttl(time.time()) <= 26 * 3600


def test_a_sample_gives_a_bucket_that_lost_its_expiry_its_expiry_again(transactional_db):
    """A worker sends a bucket's expiry with its first count there; if Redis loses it meanwhile
    (FLUSHALL, then new counts), the next sample sets it again."""
    now = time.time()
    with get_redis().pipeline() as pipe:
        charts.count_job_end(pipe, "notifications", "finished", at=now)
        pipe.execute()
    get_redis().persist(charts.MINUTES.counts_key(charts.MINUTES.start_of(now)))
    assert bucket_ttl(now) == -1

    charts.sample_queues()

    assert bucket_ttl(now) > 25 * 3600


def test_a_job_end_costs_no_extra_round_trip(transactional_db, run_worker_burst, monkeypatch):
    """The counts ride in the pipeline RQ sends when a job ends: no command of their own."""
    sent = []
    original = get_redis().__class__.execute_command

    def spy(self, *args, **options):
        sent.append(args[0])
        return original(self, *args, **options)

    monkeypatch.setattr(get_redis().__class__, "execute_command", spy)
    enqueue(tasks.record, "a", queue="notifications")
    run_worker_burst("notifications")
    assert ended_now("notifications")[0]["finished"] == 1
    assert "HINCRBY" not in sent and "EXPIREAT" not in sent  # only pipelined


def test_samples_record_the_backlog_and_the_oldest_queued_job(transactional_db):
    services.queue_pause(name="notifications")
    enqueue(tasks.record, "old", queue="notifications")
    enqueue(tasks.record, "new", queue="notifications")
    later = time.time() + 90

    charts.sample_queues(now=later)

    [sample, live] = charts.recorded_samples(charts.MINUTES, now=later)["notifications"]
    assert (sample.queued, sample.scheduled) == (2, 0)
    assert 89 <= sample.oldest_age <= 95
    assert live.queued == 2
    assert charts.recorded_samples(charts.MINUTES, now=later)["publishing-builds"][0].oldest_age == 0


def test_samples_older_than_a_day_are_dropped(transactional_db):
    now = time.time()
    charts.sample_queues(now=now - 26 * 3600)
    charts.sample_queues(now=now)
    assert get_redis().zcard(charts.samples_key("notifications")) == 1


def test_the_scheduler_samples_the_queues_every_minute(settings):
    sampling = [job for job in platform_jobs() if job.func == "jobs.jobs.sample_queues"]
    assert [job.interval for job in sampling] == [settings.CHARTS_SAMPLE_INTERVAL] == [60]


def test_the_admin_index_draws_the_last_hour_of_each_queue(staff, policies, run_worker_burst):
    policies("notifications", retry_delays=[])
    for label in "abcd":
        enqueue(tasks.record, label, queue="notifications")
    enqueue(tasks.fail_always, "boom", queue="notifications")
    run_worker_burst("notifications")
    charts.sample_queues()

    page = staff.get("/admin/").content.decode()

    row = page[page.index('data-queue="notifications"') :]
    row = row[: row.index("</tr>")]
    assert re.search(r'<svg class="chart"[^>]*data-finished="4" data-retried="0" data-failed="1"', row)
    assert "4 finished · 1 failed" in row
    assert row.count("<svg") == 2 and "<rect" in row and "<polyline" in row
    assert "<script" not in page[page.index('id="queue-overview"') :]


def test_a_queue_page_draws_its_hour_and_its_day(staff, run_worker_burst):
    enqueue(tasks.record, "a", queue="notifications")
    run_worker_burst("notifications")
    for span in ("hour", "day"):
        page = staff.get(f"/admin/jobs/queues/notifications/?range={span}").content.decode()
        assert page.count('<svg class="chart"') == 3
        assert 'data-finished="1"' in page
    assert staff.get("/admin/jobs/queues/no-such-queue/").status_code == 404


def test_the_queue_pages_are_for_staff_only(client, make_user):
    client.force_login(make_user("member"))
    answer = client.get("/admin/jobs/queues/notifications/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]


def test_pause_and_resume_buttons_post_and_say_what_happened(staff):
    answer = staff.post("/admin/jobs/queues/notifications/pause", {"next": "/admin/"}, follow=True)
    assert answer.redirect_chain[-1][0] == "/admin/"
    assert "Queue notifications paused" in answer.content.decode()
    assert {stat["name"]: stat["paused"] for stat in services.queue_stats()}["notifications"] is True
    staff.post("/admin/jobs/queues/notifications/resume", {"next": "https://elsewhere.example/"})
    assert not any(stat["paused"] for stat in services.queue_stats())
    assert staff.get("/admin/jobs/queues/notifications/pause").status_code == 405


def test_the_start_limit_shows_the_busiest_hosts_of_a_per_host_queue(staff, policies, run_worker_burst):
    policies("content-aggregation", rate_limit="30/60")
    for host, count in (("busy.example", 3), ("quiet.example", 1)):
        for n in range(count):
            enqueue(tasks.record, f"{host}-{n}", queue="content-aggregation", rate_key=host)
    run_worker_burst("content-aggregation")
    ratelimit.block(ratelimit.limiter_key("user-actions", "slow.example"), 40)

    use = {stat["name"]: stat["rate_limit"] for stat in services.queue_stats()}
    assert use["content-aggregation"]["busiest_keys"] == [
        {"key": "busy.example", "in_window": 3, "blocked_for": 0},
        {"key": "quiet.example", "in_window": 1, "blocked_for": 0},
    ]
    assert use["content-aggregation"]["in_window"] == 0  # the queue-wide key, which nothing uses
    assert use["user-actions"]["busiest_keys"][0]["key"] == "slow.example"
    assert 38 < use["user-actions"]["busiest_keys"][0]["blocked_for"] <= 40
    assert use["notifications"] is None

    page = staff.get("/admin/").content.decode()
    assert "<code>busy.example</code> 3/30" in page and "30 per 60s per key" in page
    assert "<code>slow.example</code>" in page and "blocked 40s" in page


def test_keys_leave_the_list_once_their_window_is_over(transactional_db, policies, run_worker_burst):
    policies("content-aggregation", rate_limit="30/1")
    enqueue(tasks.record, "a", queue="content-aggregation", rate_key="gone.example")
    run_worker_burst("content-aggregation")
    limit = RateLimit(30, 1)
    assert [use.rate_key for use in ratelimit.keys_in_use("content-aggregation", limit)] == ["gone.example"]
    time.sleep(1.1)
    assert ratelimit.keys_in_use("content-aggregation", limit) == []


def test_the_queue_pages_say_when_redis_is_down(staff):
    from tests import redis_server

    redis_server.stop_redis()
    try:
        for page in ("/admin/jobs/queues/notifications/", "/admin/jobs/failed/"):
            answer = staff.get(page)
            assert answer.status_code == 503 and "Redis) is unavailable" in answer.content.decode()
        assert "Redis) is unavailable" in staff.get("/admin/").content.decode()
    finally:
        redis_server.start_redis()


def test_the_job_platform_app_page_links_the_queue_pages_and_failed_jobs(staff):
    page = staff.get("/admin/jobs/").content.decode()
    assert 'href="/admin/jobs/failed/"' in page and 'href="/admin/jobs/queues/rules-run/"' in page
    assert "Paused queues" in page
