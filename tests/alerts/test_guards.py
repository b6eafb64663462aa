"""What rules may fetch (SSRF guard), how fast (per-domain limit) and in which order."""

import httpx
import pytest
from django.utils import timezone

from alerts import services
from alerts.models import Rule, RuleRun
from core import outbound
from jobs import ratelimit
from jobs.connection import get_redis
from jobs.queueing import get_queue
from tests.alerts.conftest import OUTSIDE_HOST, page_with_price


@pytest.fixture
def private_fetch_refused(settings):
    """Production's default, with only the outside server's own address opened."""
    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"{OUTSIDE_HOST}/32"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/admin",
        "http://localhost/",  # a name that resolves to loopback
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.1.2.3/",
        "http://[::1]/",
        "file:///etc/passwd",
    ],
)
def test_private_urls_are_refused_when_rules_are_made(url, api, private_fetch_refused, fast_alert_policies):
    response = api.post("/api/v1/rules/", {"name": "x", "url": url, "extractor": "css", "expression": "p"})
    assert response.status_code == 400, response.text
    assert "url" in response.json()["error"]["fields"]
    assert not Rule.objects.exists()


def test_a_redirect_to_loopback_is_refused_before_connecting(outside, rule_for, run_rule, private_fetch_refused):
    secret_url = f"http://127.0.0.1:{outside.port}/page/secret"
    outside.set_page("secret", "internal")
    rule = rule_for(f"{outside.url}/redirect?to={secret_url}", "p")
    run = run_rule(rule["id"])
    assert run["status"] == "failed" and "non-public address (127.0.0.1)" in run["error"]
    assert run["attempt_count"] == 1  # refused is final: not retried
    assert outside.requests("/redirect") and not outside.requests("/page/secret")


def test_a_name_that_now_resolves_to_loopback_is_refused_at_run_time(outside, rule_for, run_rule, settings):
    rule = rule_for(f"http://localhost:{outside.port}/page/x")  # allowed when made (tests open loopback)
    settings.ALLOW_PRIVATE_FETCH = False
    run = run_rule(rule["id"])
    assert run["status"] == "failed" and "localhost resolves to a non-public address" in run["error"]


def test_requests_go_to_the_checked_address_with_the_name_kept(outside):
    outside.set_page("pinned", "ok")
    target = outbound.resolve(f"http://localhost:{outside.port}/page/pinned")
    assert target.pinned_url.startswith("http://127.0.0.1:") or target.pinned_url.startswith("http://[::1]:")
    assert target.host_header == f"localhost:{outside.port}"
    with outbound.new_client() as client:
        response = outbound.get(client, f"{outside.url}/page/pinned", headers={"X-Check": "1"})
    assert response.text == "ok" and str(response.url) == f"{outside.url}/page/pinned"
    assert outside.requests("/page/pinned")[0]["headers"]["Host"] == f"{OUTSIDE_HOST}:{outside.port}"


def test_over_limit_runs_wait_instead_of_failing(outside, rule_for, run_worker_burst, fast_alert_policies, settings):
    fast_alert_policies["rules-run"]["rate_limit"] = "2/60"
    settings.QUEUE_POLICIES = fast_alert_policies
    url = outside.set_page("limited", page_with_price("$ 1"))
    rules = [Rule.objects.get(pk=rule_for(url, name=f"r{n}")["id"]) for n in range(5)]
    for rule in rules:
        services.rule_check(rule_id=rule.pk)
    run_worker_burst("rules-run")

    statuses = sorted(RuleRun.objects.values_list("status", flat=True))
    assert statuses == ["queued"] * 3 + ["succeeded"] * 2
    assert len(outside.requests("/page/limited")) == 2
    waiting = get_queue("rules-run").scheduled_job_registry.get_job_ids()
    assert sorted(waiting) == sorted(RuleRun.objects.filter(status="queued").values_list("job_id", flat=True))
    assert get_queue("rules-run").failed_job_registry.count == 0


def test_unlimited_domains_are_not_held_back(outside, rule_for, run_worker_burst, fast_alert_policies, settings):
    fast_alert_policies["rules-run"]["rate_limit"] = "2/60"
    settings.QUEUE_POLICIES = fast_alert_policies
    settings.RULES_UNLIMITED_DOMAINS = [OUTSIDE_HOST]
    url = outside.set_page("free", page_with_price("$ 1"))
    for n in range(5):
        services.rule_check(rule_id=rule_for(url, name=f"r{n}")["id"])
    run_worker_burst("rules-run")
    assert list(RuleRun.objects.values_list("status", flat=True)) == ["succeeded"] * 5


def test_manual_tests_run_before_scheduled_runs(api, outside, rule_for, run_worker_burst):
    url = outside.set_page("order", page_with_price("$ 1"))
    scheduled = [rule_for(url, name=f"scheduled {n}")["id"] for n in range(4)]
    for rule_id in scheduled:
        services.rule_check(rule_id=rule_id)
    manual = api.post(f"/api/v1/rules/{rule_for(url, name='manual')['id']}/run").json()["run"]
    run_worker_burst("rules-run")
    order = list(RuleRun.objects.order_by("started_at").values_list("id", flat=True))
    assert order[0] == manual
    assert RuleRun.objects.get(pk=manual).trigger == "manual_test"
    assert set(RuleRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_scheduled_check_does_not_pile_up_behind_a_pending_run(outside, rule_for):
    rule = rule_for(outside.set_page("pile", page_with_price("$ 1")))
    assert services.rule_check(rule_id=rule["id"]).startswith("run ")
    assert services.rule_check(rule_id=rule["id"]) == "a run is already pending"
    Rule.objects.filter(pk=rule["id"]).update(enabled=False)
    assert services.rule_check(rule_id=rule["id"]) == "rule disabled or gone"


def test_a_run_whose_job_redis_forgot_is_resumed_by_the_reconciler(outside, rule_for, run_worker_burst):
    from jobs.reconciler import reconcile

    rule = rule_for(outside.set_page("lost", page_with_price("$ 1")))
    services.rule_check(rule_id=rule["id"])
    get_redis().flushdb()
    RuleRun.objects.update(updated_at=timezone.now() - timezone.timedelta(minutes=1))
    assert reconcile(grace=0) == 1
    run_worker_burst("rules-run")
    assert RuleRun.objects.get().status == "succeeded"


def test_a_page_too_large_fails_the_run(outside, rule_for, run_rule, settings):
    settings.OUTBOUND_MAX_BYTES = 1000
    rule = rule_for(outside.set_page("huge", page_with_price("$ 1", "x" * 5000)))
    run = run_rule(rule["id"])
    assert run["status"] == "failed" and "more than 1000 bytes" in run["error"]


def test_a_host_that_does_not_resolve_yet_may_be_watched(api, rule_for, fast_alert_policies):
    rule = rule_for("http://no-such-host.invalid/page", "p")
    with pytest.raises(httpx.ConnectError):
        outbound.resolve(rule["url"])


def test_a_429_holds_back_every_rule_on_its_domain_for_retry_after(outside, rule_for, run_worker_burst):
    busy = rule_for(outside.set_page("busy", "slow down", status=429, headers={"Retry-After": "30"}))
    other = rule_for(outside.set_page("other", page_with_price("$ 1")), name="same domain")
    services.rule_check(rule_id=busy["id"])
    run_worker_burst("rules-run")
    assert RuleRun.objects.get(rule_id=busy["id"]).status == "queued"  # its retry is scheduled
    services.rule_check(rule_id=other["id"])
    run_worker_burst("rules-run")
    assert RuleRun.objects.get(rule_id=other["id"]).status == "queued"  # waiting out the 30 s
    assert outside.requests("/page/other") == []
    blocked_for = get_redis().pttl(ratelimit.block_key(ratelimit.limiter_key("rules-run", OUTSIDE_HOST)))
    assert 25_000 < blocked_for <= 30_000
