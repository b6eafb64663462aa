import pytest

from aggregation.models import Fetch, RemoteAccount
from jobs.queueing import get_queue


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
