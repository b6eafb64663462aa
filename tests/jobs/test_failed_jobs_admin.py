"""The admin's failed-jobs page: every queue's failed registry, searched by queue, kind,
error text and time; requeue (the row reopens) or delete (the row stays failed) one job, a
selection, or everything a search matches."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from jobs.queueing import enqueue, get_queue
from tests.jobs import tasks
from tests.rows import failed_jobs

PAGE = "/admin/jobs/failed/"


@pytest.fixture
def failing(policies, run_worker_burst):
    """Fail platform jobs (no row) on a queue at once: fail("label", queue=…) -> job id."""
    for queue in ("notifications", "user-actions"):
        policies(queue, retry_delays=[])

    def fail(label, queue="notifications"):
        job_id = enqueue(tasks.fail_always, label, queue=queue)
        run_worker_burst(queue)
        return job_id

    return fail


@pytest.fixture
def ops(make_user):
    client = Client()
    client.force_login(make_user("ops", is_staff=True))
    return client


def listed(page):
    return page.content.decode().count('class="failed-job"')


def test_it_lists_the_failed_jobs_of_every_queue_with_traceback_and_row(ops, failed_publishing, failing):
    platform_job = failing("nightly-report")

    page = ops.get(PAGE).content.decode()

    assert page.count('class="failed-job"') == 2
    assert f'data-job="{failed_publishing.job_id}"' in page and f'data-job="{platform_job}"' in page
    assert f'href="/admin/publishing/publishing/{failed_publishing.pk}/change/"' in page
    assert "publishing.Publishing" in page and "(failed)" in page
    assert "Gradle could not find the keystore" in page and "Traceback" in page
    assert "RuntimeError: nightly-report failed on purpose" in page
    assert "/admin/jobs/failed/" in ops.get("/admin/").content.decode()


def test_search_by_queue_kind_error_text_and_time(ops, failed_publishing, failing):
    failing("report-a")
    failing("report-b", queue="user-actions")
    soon = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")

    assert listed(ops.get(PAGE)) == 3
    assert listed(ops.get(PAGE, {"queue": "user-actions"})) == 1
    assert listed(ops.get(PAGE, {"kind": "publishing.Publishing"})) == 1
    assert listed(ops.get(PAGE, {"kind": "platform"})) == 2
    assert listed(ops.get(PAGE, {"q": "KEYSTORE"})) == 1
    assert listed(ops.get(PAGE, {"q": "report-", "queue": "notifications"})) == 1
    assert listed(ops.get(PAGE, {"failed_after": soon})) == 0
    assert listed(ops.get(PAGE, {"failed_before": soon})) == 3
    assert "is not a date and time" in ops.get(PAGE, {"failed_after": "yesterday"}).content.decode()


def test_requeue_one_reopens_its_row_and_runs_its_job_again(ops, failed_publishing):
    answer = ops.post(PAGE, {"do": f"requeue:{failed_publishing.job_id}"}, follow=True)

    assert "Requeued 1 failed job: their rows are queued again" in answer.content.decode()
    failed_publishing.refresh_from_db()
    assert (failed_publishing.status, failed_publishing.last_error) == ("queued", "")
    assert failed_publishing.job_id in get_queue("publishing-builds").get_job_ids()
    assert failed_jobs("publishing-builds") == {}


def test_requeue_a_selection(ops, failing):
    chosen = [failing("one"), failing("two")]
    left = failing("three")

    ops.post(PAGE, {"do": "requeue:selected", "job": chosen})

    assert sorted(get_queue("notifications").get_job_ids()) == sorted(chosen)
    assert set(failed_jobs("notifications")) == {left}


def test_requeue_everything_a_search_matches_and_nothing_else(ops, failing):
    matching = [failing("alpha-1"), failing("alpha-2")]
    other = failing("beta")

    answer = ops.post(f"{PAGE}?q=alpha", {"do": "requeue:matching"}, follow=True)

    assert answer.redirect_chain[-1][0] == f"{PAGE}?q=alpha"
    assert "Requeued 2 failed jobs" in answer.content.decode()
    assert sorted(get_queue("notifications").get_job_ids()) == sorted(matching)
    assert set(failed_jobs("notifications")) == {other}


def test_delete_asks_first_then_removes_the_job_and_the_row_stays_failed(ops, failed_publishing):
    job_id = failed_publishing.job_id

    confirm = ops.post(PAGE, {"do": f"delete:{job_id}"})
    assert "Yes, delete 1 job" in confirm.content.decode() and failed_jobs("publishing-builds")

    answer = ops.post(PAGE, {"do": f"delete:{job_id}", "confirmed": "yes"}, follow=True)

    assert "Their rows stay failed" in answer.content.decode()
    assert failed_jobs("publishing-builds") == {}
    failed_publishing.refresh_from_db()
    assert failed_publishing.status == "failed" and "keystore" in failed_publishing.last_error


def test_delete_everything_a_search_matches(ops, failing):
    failing("gone-1")
    failing("gone-2")
    kept = failing("kept")
    ops.post(f"{PAGE}?q=gone", {"do": "delete:matching", "confirmed": "yes"})
    assert set(failed_jobs("notifications")) == {kept}


def test_an_action_on_a_job_that_left_the_list_says_so(ops, failing):
    job_id = failing("twice")
    ops.post(PAGE, {"do": f"requeue:{job_id}"})
    answer = ops.post(PAGE, {"do": f"requeue:{job_id}"}, follow=True).content.decode()
    assert "Requeued 0 failed jobs" in answer and "1 job had already left the failed list" in answer


def test_the_page_is_for_staff_only_and_actions_need_post_and_csrf(client, make_user, failing):
    job_id = failing("guarded")
    client.force_login(make_user("member"))
    assert client.get(PAGE).status_code == 302
    assert client.post(PAGE, {"do": f"requeue:{job_id}"}).status_code == 302

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("staff-member", is_staff=True))
    assert strict.get(PAGE, {"do": f"requeue:{job_id}"}).status_code == 200  # a GET does nothing
    assert strict.post(PAGE, {"do": f"requeue:{job_id}"}).status_code == 403
    assert set(failed_jobs("notifications")) == {job_id}
