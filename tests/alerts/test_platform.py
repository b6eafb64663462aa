"""Platform alerts: a workspace routes platform events to its channels. Row events (a
publishing failed, a source disabled) reach only the row's own workspace; health events (a
queue's backlog, no live worker) reach every route to them, once per window."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from rq.utils import utcformat

from alerts import platform
from alerts.models import AlertDelivery, DedupeClaim, PlatformRoute
from jobs import platform_events, scheduling
from jobs.connection import get_redis
from jobs.queueing import enqueue, get_queue
from tests.alerts.conftest import OUTSIDE_HOST
from tests.conftest import wait_for
from tests.fakes.platforms_fake import FakePlatforms
from tests.jobs import tasks
from tests.publishing.conftest import wait_until_finished


def route(client, channel, event, **fields):
    response = client.post("/api/v1/platform-routes/", {"event": event, "channel": channel["id"], **fields})
    assert response.status_code == 201, response.text
    return response.json()


def their_channel(other_api, outside, name="theirs"):
    url = f"json://{OUTSIDE_HOST}:{outside.port}/hook/{name}"
    response = other_api.post("/api/v1/channels/", {"name": name, "kind": "apprise", "url": url})
    assert response.status_code == 201, response.text
    return response.json()


def sent(outside, name):
    """What each call to the hook carried (apprise's JSON: title and message)."""
    return [json.loads(call["body"]) for call in outside.hook_calls(name)]


# --- the routes API -------------------------------------------------------------------------


def test_routes_are_made_changed_and_deleted_over_the_api(api, channel_for, settings):
    channel = channel_for("ops")
    backlog = route(api, channel, "queue_backlog")
    failed = route(api, channel, "publishing_failed")

    assert backlog["threshold_minutes"] == settings.PLATFORM_BACKLOG_MINUTES
    assert failed["threshold_minutes"] is None and failed["workspace"] == channel["workspace"]
    changed = api.client.patch(f"/api/v1/platform-routes/{backlog['id']}", json={"threshold_minutes": 45})
    assert changed.status_code == 200 and changed.json()["threshold_minutes"] == 45
    moved = api.client.patch(f"/api/v1/platform-routes/{backlog['id']}", json={"event": "no_worker"})
    assert moved.json()["event"] == "no_worker" and moved.json()["threshold_minutes"] == 45
    listed = api.get("/api/v1/platform-routes/").json()["results"]
    assert {item["event"] for item in listed} == {"no_worker", "publishing_failed"}
    assert api.client.delete(f"/api/v1/platform-routes/{failed['id']}").status_code == 204
    assert list(PlatformRoute.objects.values_list("event", flat=True)) == ["no_worker"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"event": "publishing_failed", "threshold_minutes": 5}, "threshold_minutes"),
        ({"event": "queue_backlog", "threshold_minutes": 0}, "threshold_minutes"),
        ({"event": "queue_backlog", "threshold_minutes": "5"}, "threshold_minutes"),
        ({"event": "disk_full"}, "event"),
        ({"event": "no_worker", "colour": "red"}, "colour"),
    ],
)
def test_bad_routes_are_a_400_that_changes_nothing(api, channel_for, body, field):
    channel = channel_for("ops")
    response = api.post("/api/v1/platform-routes/", {"channel": channel["id"], **body})
    assert response.status_code == 400 and field in response.json()["error"]["fields"], response.text
    assert not PlatformRoute.objects.exists()


def test_a_channel_hears_an_event_once_and_only_its_own_workspaces_channels_are_taken(
    api, other_api, outside, channel_for
):
    route(api, channel_for("ops"), "no_worker")
    again = api.post(
        "/api/v1/platform-routes/", {"event": "no_worker", "channel": PlatformRoute.objects.get().channel_id}
    )
    theirs = their_channel(other_api, outside)
    taken = api.post("/api/v1/platform-routes/", {"event": "no_worker", "channel": theirs["id"]})

    assert again.status_code == 400 and "event" in again.json()["error"]["fields"]
    assert taken.status_code == 400 and taken.json()["error"]["fields"] == {"channel": ["No such channel."]}
    assert PlatformRoute.objects.count() == 1


# --- row events -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def remote():
    """Mastodon, Lemmy, PeerTube and feeds on loopback (tests/fakes/platforms.py)."""
    server = FakePlatforms()
    server.start()
    yield server
    server.stop()


def test_a_failed_publishing_sends_one_alert_to_the_routed_channel_only(
    api, other_api, fake_eas, processes, fast_publishing_policy, outside, channel_for
):
    route(api, channel_for("ops"), "publishing_failed")
    channel_for("quiet")
    route(other_api, their_channel(other_api, outside), "publishing_failed")
    fake_eas.configure(polls_until_done=1, final_status="ERRORED", error_message="Gradle build failed")

    publishing_id = api.initiate(api.create_project()).json()["id"]
    processes.worker("publishing-builds", "alerts-dispatch")
    publishing = wait_until_finished(publishing_id)
    assert publishing.status == "failed"
    wait_for(lambda: outside.hook_calls("ops"), message="the platform alert")

    [message] = sent(outside, "ops")
    assert message["title"] == f"Publishing {publishing_id} of app (ios) failed"
    assert "Gradle build failed" in message["message"] and f"/api/v1/publishing/{publishing_id}" in message["message"]
    assert "started at: 20" in message["message"]
    time.sleep(1)
    assert outside.hook_calls("quiet") == [] and outside.hook_calls("theirs") == []
    assert len(outside.hook_calls("ops")) == 1


def test_a_source_disabled_after_its_failures_sends_one_alert(
    api, other_api, outside, channel_for, remote, run_worker_burst, settings
):
    policies = dict(settings.QUEUE_POLICIES)
    policies["content-aggregation"] = {**policies["content-aggregation"], "retry_delays": []}
    settings.QUEUE_POLICIES = policies
    settings.SOURCE_MAX_FAILURES = 2
    route(api, channel_for("ops", kind="webhook", url=f"{outside.url}/hook/ops"), "source_disabled")
    route(other_api, their_channel(other_api, outside), "source_disabled")
    body = {"name": "mastodon public", "platform": "mastodon", "url": remote.url, "target": "public"}
    source_id = api.post("/api/v1/sources/", body).json()["id"]
    remote.misbehave("/api/v1/timelines/public", status=503, times=10)

    def fetch():
        assert api.post(f"/api/v1/sources/{source_id}/fetch", {}).status_code == 202
        run_worker_burst("content-aggregation", "alerts-dispatch")

    fetch()
    assert outside.hook_calls("ops") == []
    fetch()

    [call] = outside.hook_calls("ops")
    message = json.loads(call["body"])
    assert message["event"] == "source_disabled" and message["workspace"] == channel_workspace(api)
    assert message["title"] == "Source mastodon public disabled after 2 failed fetches in a row"
    assert message["details"]["source"] == source_id and message["details"]["last fetched at"] == "never"
    assert "503" in message["error"] and "503" in message["body"]
    assert outside.hook_calls("theirs") == []


def channel_workspace(api):
    return api.get("/api/v1/workspaces/").json()["results"][0]["id"]


def test_an_alert_that_cannot_be_queued_never_undoes_the_failure(api, channel_for):
    """A handler that fails is rolled back alone: the row's failure stands."""
    from publishing.models import Project, Publishing

    route(api, channel_for("ops"), "publishing_failed")
    project = Project.objects.create(workspace_id=channel_workspace(api), name="p", directory="app")
    publishing = Publishing.objects.create(workspace=project.workspace, project=project, platform="ios")
    broken = platform_events.RowEvent("publishing_failed", publishing.workspace_id, title="x", details={"t": {1}})

    with transaction.atomic():
        Publishing.objects.filter(pk=publishing.pk).update(status="failed")
        platform_events.emit(broken)  # its message cannot be stored (a set is not JSON)

    assert Publishing.objects.get(pk=publishing.pk).status == "failed"
    assert not AlertDelivery.objects.exists()


# --- health events --------------------------------------------------------------------------


def old_job(queue_name, minutes):
    """A job that has waited `minutes` on the queue (no worker serves it here)."""
    with_id = enqueue(tasks.record, "old", queue=queue_name)
    get_redis().hset(f"rq:job:{with_id}", "enqueued_at", utcformat(datetime.now(UTC) - timedelta(minutes=minutes)))
    return with_id


def run_check(run_worker_burst):
    """The periodic job, run by a real worker with the deliveries it queues."""
    enqueue("alerts.jobs.platform_check", queue="maintenance")
    run_worker_burst("maintenance", "alerts-dispatch")


def test_a_queue_with_an_old_job_alerts_each_route_past_its_threshold_once_per_window(
    api, other_api, outside, channel_for, run_worker_burst
):
    route(api, channel_for("ops"), "queue_backlog", threshold_minutes=10)
    route(api, channel_for("patient"), "queue_backlog", threshold_minutes=60)
    route(other_api, their_channel(other_api, outside), "queue_backlog", threshold_minutes=15)
    old_job("notifications", minutes=20)
    enqueue(tasks.record, "new", queue="notifications")

    run_check(run_worker_burst)

    [message] = sent(outside, "ops")
    assert message["title"] == "Queue notifications: the oldest queued job has waited 20 min"
    assert "queued jobs: 2" in message["message"] and "threshold: 10 min" in message["message"]
    assert "oldest queued since: 20" in message["message"]
    # A health event is the platform's: every route to it hears it, whatever its workspace.
    assert len(outside.hook_calls("theirs")) == 1
    assert outside.hook_calls("patient") == []

    run_check(run_worker_burst)
    assert len(outside.hook_calls("ops")) == len(outside.hook_calls("theirs")) == 1
    assert AlertDelivery.objects.count() == 2  # a condition still within its window leaves no row

    DedupeClaim.objects.update(until=datetime.now(UTC) - timedelta(seconds=1))  # the window has passed
    run_check(run_worker_burst)
    assert len(outside.hook_calls("ops")) == 2


def test_a_backlog_that_clears_is_heard_of_once_and_a_new_one_alerts_at_once(
    api, outside, channel_for, run_worker_burst
):
    route(api, channel_for("ops"), "queue_backlog", threshold_minutes=10)
    stuck = old_job("notifications", minutes=20)
    run_check(run_worker_burst)
    assert [message["title"] for message in sent(outside, "ops")] == [
        "Queue notifications: the oldest queued job has waited 20 min"
    ]

    get_queue("notifications").remove(stuck)
    run_check(run_worker_burst)
    run_check(run_worker_burst)

    recovery = sent(outside, "ops")[1:]
    assert [message["title"] for message in recovery] == [
        "Queue notifications: recovered, no queued job has waited 10 min"
    ]
    assert "queued jobs: 0" in recovery[0]["message"]

    # Within the first alert's window, yet a new backlog is news: it alerts at once.
    old_job("notifications", minutes=30)
    run_check(run_worker_burst)
    assert sent(outside, "ops")[-1]["title"] == "Queue notifications: the oldest queued job has waited 30 min"
    assert len(outside.hook_calls("ops")) == 3


def test_a_paused_queue_is_no_backlog(api, outside, channel_for, run_worker_burst):
    from jobs import services as queues

    route(api, channel_for("ops"), "queue_backlog", threshold_minutes=1)
    old_job("notifications", minutes=30)
    queues.queue_pause(name="notifications")

    run_check(run_worker_burst)

    assert outside.hook_calls("ops") == []


def test_the_health_check_is_a_periodic_maintenance_job(settings):
    settings.PLATFORM_CHECK_INTERVAL = 60
    scheduler = scheduling.get_scheduler()
    scheduling.sync_provider(scheduler, platform.CHECK_PREFIX, platform.check_schedules)
    assert scheduling.timing_of(scheduler, "platform-check-health") == "every 60s"


def test_with_no_live_worker_the_scheduler_itself_alerts_once_per_window(
    api, other_api, outside, channel_for, processes
):
    route(api, channel_for("ops"), "no_worker", threshold_minutes=2)
    route(api, channel_for("backlog"), "queue_backlog", threshold_minutes=5)
    route(other_api, their_channel(other_api, outside), "no_worker", threshold_minutes=2)
    old_job("rules-run", minutes=7)
    # The last worker was seen five minutes ago; none has been alive since.
    get_redis().set(platform_events.WORKER_LAST_SEEN_KEY, time.time() - 300)

    processes.scheduler(env={"PLATFORM_CHECK_INTERVAL": "0.5"})

    wait_for(lambda: outside.hook_calls("ops") and outside.hook_calls("backlog"), message="the scheduler's alerts")
    [message] = sent(outside, "ops")
    assert message["title"] == "No live Conveyor worker for 5 min: no job runs"
    assert "rules-run 1" in message["message"] and "last worker seen at: 20" in message["message"]
    wait_for(lambda: outside.hook_calls("theirs"), message="the other workspace's route to the platform's event")
    time.sleep(2)  # four more checks
    assert [len(outside.hook_calls(name)) for name in ("ops", "backlog", "theirs")] == [1, 1, 1]
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"delivered"}

    # When a worker comes back, the deliveries' own jobs find them delivered.
    processes.worker("alerts-dispatch")
    wait_for(lambda: get_queue("alerts-dispatch").count == 0, message="the deliveries' jobs")
    time.sleep(1)
    assert [len(outside.hook_calls(name)) for name in ("ops", "backlog", "theirs")] == [1, 1, 1]


def test_a_live_worker_is_no_alert(api, outside, channel_for, processes):
    route(api, channel_for("ops"), "no_worker", threshold_minutes=1)
    get_redis().set(platform_events.WORKER_LAST_SEEN_KEY, time.time() - 300)
    processes.worker("alerts-dispatch")
    wait_for(lambda: get_redis().zcard("conveyor:workers-alive"), message="the worker's heartbeat")

    processes.scheduler(env={"PLATFORM_CHECK_INTERVAL": "0.5"})
    wait_for(
        lambda: float(get_redis().get(platform_events.WORKER_LAST_SEEN_KEY)) > time.time() - 10,
        message="the scheduler to see the worker",
    )
    time.sleep(1)

    assert outside.hook_calls("ops") == [] and not AlertDelivery.objects.exists()


def test_workers_coming_back_is_heard_of_once(api, outside, channel_for, processes, run_worker_burst):
    route(api, channel_for("ops"), "no_worker", threshold_minutes=2)
    get_redis().set(platform_events.WORKER_LAST_SEEN_KEY, time.time() - 300)
    platform.platform_check()  # what the scheduler does while no worker lives
    run_worker_burst("alerts-dispatch")
    assert [message["title"] for message in sent(outside, "ops")] == ["No live Conveyor worker for 5 min: no job runs"]

    processes.worker("alerts-dispatch")
    wait_for(lambda: get_redis().zcard("conveyor:workers-alive"), message="the worker's heartbeat")
    platform.platform_check()  # the maintenance job, once workers run again
    platform.platform_check()

    wait_for(lambda: len(outside.hook_calls("ops")) == 2, message="the recovery")
    assert sent(outside, "ops")[1]["title"] == "Workers are back: 1 live"
    time.sleep(1)
    assert len(outside.hook_calls("ops")) == 2


def test_routes_are_made_in_the_admin_through_the_same_service(staff, api, channel_for, settings):
    channel = channel_for("ops")
    assert staff.get("/admin/alerts/platformroute/add/").status_code == 200

    refused = staff.post(
        "/admin/alerts/platformroute/add/",
        {"event": "publishing_failed", "channel": channel["id"], "threshold_minutes": 5},
    )
    saved = staff.post("/admin/alerts/platformroute/add/", {"event": "queue_backlog", "channel": channel["id"]})

    assert refused.status_code == 200 and "threshold_minutes" in refused.context["adminform"].form.errors
    assert saved.status_code == 302, saved.content.decode()[:2000]
    route = PlatformRoute.objects.get()
    assert (route.workspace_id, route.threshold_minutes) == (channel["workspace"], settings.PLATFORM_BACKLOG_MINUTES)
    assert staff.get("/admin/alerts/platformroute/").status_code == 200
    assert staff.get(f"/admin/alerts/platformroute/{route.pk}/change/").status_code == 200
