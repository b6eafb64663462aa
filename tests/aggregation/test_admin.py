import pytest

from aggregation import services
from aggregation.models import Fetch, RemoteAccount, Source
from jobs import scheduling
from jobs.queueing import get_queue
from tests.rows import admin_change


@pytest.mark.parametrize(
    "model", ["source", "fetch", "post", "subscription", "notification", "useraction", "remoteaccount"]
)
def test_aggregation_admin_pages_render(staff, api, source_for, model):
    source_for("mastodon", "public")
    api.post("/api/v1/accounts/", {"instance": "https://mastodon.example", "access_token": "tok-never-shown-123"})
    page = staff.get(f"/admin/aggregation/{model}/")
    assert page.status_code == 200
    assert "tok-never-shown-123" not in page.content.decode()


def test_the_fetch_now_action_queues_a_fetch(staff, source_for):
    source_id = source_for("feed", "", "/feeds/x.rss")
    response = staff.post(
        "/admin/aggregation/source/", {"action": "fetch_now", "_selected_action": [source_id]}, follow=True
    )
    assert response.status_code == 200
    fetch = Fetch.objects.get(source_id=source_id)
    assert get_queue("content-aggregation").get_job_ids() == [fetch.job_id]


def test_a_remote_account_page_never_shows_its_token(staff, api):
    api.post("/api/v1/accounts/", {"instance": "https://mastodon.example", "access_token": "tok-never-shown-123"})
    account = RemoteAccount.objects.get()
    page = staff.get(f"/admin/aggregation/remoteaccount/{account.pk}/change/").content.decode()
    assert "mastodon.example" in page and "tok-never-shown-123" not in page


def test_enabling_a_source_again_in_the_admin_forgets_its_failure_streak(staff, source_for):
    source_id = source_for("mastodon", "public")
    Source.objects.filter(pk=source_id).update(enabled=False, consecutive_failures=5, last_error="503 again")

    response = admin_change(staff, f"/admin/aggregation/source/{source_id}/change/", enabled=True)

    assert response.status_code == 302, response.content.decode()[:2000]
    source = Source.objects.get(pk=source_id)
    assert source.enabled and source.consecutive_failures == 0 and source.last_error == ""
    assert services.poll_job_id(source_id) in scheduling.get_scheduler()
