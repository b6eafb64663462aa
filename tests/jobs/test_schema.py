"""The OpenAPI schema documents every endpoint, without a warning from drf-spectacular."""

import yaml
from django.core.management import call_command


def test_the_schema_has_every_endpoint_and_no_warnings(tmp_path, db):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(path))
    paths = yaml.safe_load(path.read_text())["paths"]
    for endpoint in (
        "/health",
        "/api/v1/publishing/initiate",
        "/api/v1/sources/fetch",
        "/api/v1/rules/{id}/run",
        "/api/v1/channels/{id}/test",
        "/api/v1/queues/{name}/pause",
        "/api/v1/notifications/read",
        "/api/v1/platform-routes/",
        "/api/v1/platform-routes/{id}",
    ):
        assert endpoint in paths, endpoint
    run = paths["/api/v1/rules/{id}/run"]["post"]
    assert "202" in run["responses"] and "requestBody" in run
