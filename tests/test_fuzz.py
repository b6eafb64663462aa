"""Generated requests against the project's own OpenAPI schema (schemathesis), with a
valid (staff) token, over real HTTP to the live server: no answer is a 5xx, and every 4xx is in
the project's error shape. `make test` runs a few cases per operation; `make fuzz`
(FUZZ_EXAMPLES=30) runs well over a thousand and prints how many."""

import json
import os
from collections import Counter

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
# schemathesis' coverage phase (every boundary and negative case the schema defines, a few
# thousand requests) runs in `make fuzz`; `make test` fuzzes a few cases per operation.
PHASES = os.environ.get("FUZZ_PHASES", "examples,fuzzing").split(",")
SEEN = Counter()
SEEN_STATUSES = Counter()


def project_schema():
    """The schema /api/schema/ serves, built in-process (it needs no request)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


schema = schemathesis.openapi.from_dict(project_schema())
schema.config.phases.update(phases=PHASES)


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    print(f"\nfuzz: {sum(SEEN.values())} generated cases over {len(SEEN)} operations; statuses: {dict(SEEN_STATUSES)}")


@pytest.fixture
def fuzz_client(live_server, staff_api, settings):
    # Loopback addresses stay refused here: generated URLs must meet the real guard.
    settings.ALLOW_PRIVATE_FETCH = False
    return live_server.url, {"Authorization": staff_api.client.headers["Authorization"]}


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_5xx_and_every_4xx_has_the_error_shape(case, fuzz_client):
    base_url, headers = fuzz_client
    response = case.call(base_url=base_url, headers=headers, timeout=20)
    SEEN[case.operation.label] += 1
    SEEN_STATUSES[response.status_code] += 1

    assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        error = response.json().get("error")
        assert isinstance(error, dict) and {"code", "message", "fields"} <= set(error), response.text[:500]
        assert isinstance(error["fields"], dict), response.text[:500]
