"""Fixtures of the aggregation tests: the fake remote platforms and sources on it."""

import pytest


@pytest.fixture(scope="module")
def remote():
    from tests.fakes.platforms_fake import FakePlatforms

    server = FakePlatforms()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_remote(remote):
    remote.reset()


@pytest.fixture
def source_for(api, remote):
    def create(platform, target="", path=""):
        body = {"name": f"{platform} {target}", "platform": platform, "url": remote.url + path, "target": target}
        response = api.post("/api/v1/sources/", body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return create
