"""Fixtures of the publishing tests: publishings asked for through the real API."""

import pytest

from publishing.models import Publishing
from tests.conftest import wait_for

SECRET = "expo-secret-token-0123456789"


@pytest.fixture
def publish(api):
    project = api.create_project()

    def publish(platform="ios"):
        response = api.initiate(project, platform=platform, token=SECRET)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    return publish


def status_of(publishing_id):
    return Publishing.objects.get(pk=publishing_id).status


def wait_until_finished(publishing_id, timeout=30):
    wait_for(
        lambda: status_of(publishing_id) in ("succeeded", "failed"),
        timeout=timeout,
        message=f"publishing {publishing_id} to finish",
    )
    return Publishing.objects.get(pk=publishing_id)


def start_times(fake_eas, command):
    return [call["time"] for call in fake_eas.calls_of(command)]
