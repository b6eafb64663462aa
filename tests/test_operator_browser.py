"""What an operator does, in a real browser: Playwright drives the system's Chromium against
the live server (real database, real Redis, real workers). Sign in through the admin's login
form, read the queue charts drawn from jobs that really ran, find a failed job by its error
and requeue it, pause and resume a queue, open a publishing, read the API docs.

Each page is saved as a screenshot in var/screenshots/ (git-ignored) for a person to look at.
Skipped without Chromium, except where CONVEYOR_REQUIRE_CHROMIUM is set (CI).
"""

import json
import os
from pathlib import Path

import pytest

from alerts.fetchers import find_chromium
from jobs import charts
from jobs.models import PausedQueue
from jobs.queueing import enqueue
from tests.conftest import KEYSTORE_ERROR
from tests.jobs import tasks

pytestmark = pytest.mark.skipif(
    not find_chromium() and not os.environ.get("CONVEYOR_REQUIRE_CHROMIUM"),
    reason="no Chromium on this machine (.ci/run installs Debian's chromium and requires these tests)",
)

SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
PASSWORD = "a-real-password-for-the-form-42"


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=args)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def shoot(page, name, full_page=True):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture
def real_traffic(settings, run_worker_burst):
    """Jobs that really run in a worker, for the charts: some finish, some fail, some hosts
    use their start limit, a backlog waits; then the maintenance sample of the queues."""
    policies = json.loads(json.dumps(settings.QUEUE_POLICIES))
    policies["user-actions"]["retry_delays"] = []
    settings.QUEUE_POLICIES = policies
    for n in range(12):
        enqueue(tasks.record, f"note-{n}", queue="notifications")
    for n in range(3):
        enqueue(tasks.fail_always, f"action-{n}", queue="user-actions")
    for host, count in (("mastodon.example", 4), ("lemmy.example", 2)):
        for n in range(count):
            enqueue(tasks.record, f"{host}-{n}", queue="content-aggregation", rate_key=host)
    run_worker_burst("notifications", "user-actions", "content-aggregation")
    for n in range(5):
        enqueue(tasks.record, f"waiting-{n}", queue="alerts-dispatch")
    charts.sample_queues()


@pytest.fixture
def operator(django_user_model, transactional_db):
    return django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)


def test_an_operator_watches_and_acts_in_the_admin(
    live_server, browser_page, operator, failed_publishing, real_traffic
):
    page = browser_page

    # Sign in through the real login form.
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#queue-overview")

    # The overview: charts drawn from the jobs that ran.
    notifications = page.locator('tr.queue-row[data-queue="notifications"]')
    assert notifications.locator("svg.chart").count() == 2
    assert notifications.locator("svg.chart").first.get_attribute("data-finished") == "12"
    assert notifications.locator("svg.chart rect.finished").count() >= 1
    actions = page.locator('tr.queue-row[data-queue="user-actions"] svg.chart').first
    assert actions.get_attribute("data-failed") == "3"
    assert page.locator('tr.queue-row[data-queue="alerts-dispatch"] svg.chart').nth(1).get_attribute("data-queued")
    aggregation = page.locator('tr.queue-row[data-queue="content-aggregation"] .busiest-keys')
    assert "mastodon.example 4/30" in aggregation.inner_text()
    shoot(page, "01-admin-overview")
    page.locator("#queue-overview").screenshot(path=str(SCREENSHOTS / "01b-queue-overview-close.png"))

    # A queue's own page: the hour of jobs ended, the backlog, the oldest queued job.
    page.click('tr.queue-row[data-queue="notifications"] a:has-text("notifications")')
    page.wait_for_selector(".queue-page")
    assert page.locator(".queue-page svg.chart").count() == 3
    shoot(page, "02-queue-notifications")
    page.click("text=Last 24 hours")
    page.wait_for_url("**range=day")
    assert page.locator(".queue-page svg.chart").first.get_attribute("data-finished") == "12"
    shoot(page, "03-queue-notifications-day")

    # A publishing that failed: its page shows the status and the error.
    page.goto(f"{live_server.url}/admin/publishing/publishing/{failed_publishing.pk}/change/")
    assert page.locator(".field-status .readonly").inner_text().lower() == "failed"
    assert KEYSTORE_ERROR in page.locator(".field-last_error .readonly").inner_text()
    # Its attempts, inline: the one that failed, with its error.
    attempts = page.locator(".inline-group").filter(has_text="ttempt")
    assert attempts.count() == 1
    assert KEYSTORE_ERROR in attempts.first.inner_text() and "failed" in attempts.first.inner_text()
    shoot(page, "04-publishing-failed")

    # Find the failed job by its error text, and requeue it: the row reopens.
    page.goto(f"{live_server.url}/admin/")
    page.click("#failed-jobs-link")
    page.wait_for_selector("#failed-search")
    assert page.locator("tr.failed-job").count() == 4  # the publishing and three user actions
    page.fill('#failed-search input[name="q"]', "keystore")
    page.click('#failed-search input[type="submit"]')
    page.wait_for_url("**q=keystore**")
    assert page.locator("tr.failed-job").count() == 1
    page.locator("tr.failed-job details summary").click()
    assert "Traceback" in page.locator("tr.failed-job pre.traceback").inner_text()
    shoot(page, "05-failed-jobs-search")
    page.click("tr.failed-job button.requeue-one")
    page.wait_for_selector(".messagelist")
    assert "Requeued 1 failed job" in page.locator(".messagelist").inner_text()
    assert page.locator("tr.failed-job").count() == 0
    shoot(page, "06-failed-job-requeued")
    failed_publishing.refresh_from_db()
    assert (failed_publishing.status, failed_publishing.last_error) == ("queued", "")

    # Pause a queue from the overview, then resume it.
    page.goto(f"{live_server.url}/admin/")
    page.click('tr.queue-row[data-queue="notifications"] form.queue-toggle button')
    page.wait_for_selector('tr.queue-row[data-queue="notifications"] .paused-badge')
    assert "Queue notifications paused" in page.locator(".messagelist").inner_text()
    assert PausedQueue.objects.filter(name="notifications").exists()
    shoot(page, "07-queue-paused")
    page.click('tr.queue-row[data-queue="notifications"] form.queue-toggle button:has-text("Resume")')
    page.wait_for_selector(".messagelist")
    assert "Queue notifications resumed" in page.locator(".messagelist").inner_text()
    assert page.locator('tr.queue-row[data-queue="notifications"] .paused-badge').count() == 0
    assert not PausedQueue.objects.exists()
    shoot(page, "08-queue-resumed")

    # The API docs, from our own static files: the operations are listed.
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock-summary", timeout=20_000)
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/publishing/initiate" in " ".join(operations)
    assert len(operations) > 20
    shoot(page, "09-api-docs", full_page=False)
