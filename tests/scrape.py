"""Reading GET /metrics as Prometheus does: over HTTP, with the bearer token."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-token-for-the-tests-0123456789"


def scrape(base_url, token=TOKEN):
    """{(sample name, frozenset of labels): value} of one scrape."""
    response = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    """One sample's value; 0 when the series is not there (yet)."""
    return samples.get((name, frozenset(labels.items())), 0)
