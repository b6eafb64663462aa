"""Alerts: rule checks per minute against a local target page, and alerts delivered per
second to a local webhook, each against raw RQ workers doing the same core work (GET and
extract; POST the JSON) measured in the same run, with the same number of processes.

The per-domain limit is lifted for the target (RULES_UNLIMITED_DOMAINS), as an operator
would for their own site; ALLOW_PRIVATE_FETCH lets workers reach the loopback target.
"""

import time

import redis

from bench import tasks
from bench.common import main, python, running, wait_until
from bench.variants import RAW_QUEUE, rq_workers
from tests.fakes.outside_fake import OUTSIDE_HOST, Outside

PROCESSES = 4
PAGE = "<html><body><h1>Widget</h1><div id='price'>$ 10.00</div>" + "<p>filler text</p>" * 200 + "</body></html>"


def bench_env(env):
    return {**env, "ALLOW_PRIVATE_FETCH": "1", "RULES_UNLIMITED_DOMAINS": OUTSIDE_HOST, "LOG_LEVEL": "WARNING"}


def platform_workers(queue):
    return [python("manage.py", "rqworker-pool", "--num-workers", str(PROCESSES), queue)]


def raw_rq(env, jobs):
    """Seconds for raw RQ SimpleWorkers to run `jobs` ([(func, args)]), enqueued in one go."""
    from rq import Queue

    connection = redis.Redis.from_url(env["REDIS_URL"])
    connection.delete("bench:done")
    queue = Queue(RAW_QUEUE, connection=connection)
    with running(rq_workers("rq.worker.SimpleWorker")(env, PROCESSES), env):
        time.sleep(2)  # workers up
        started = time.perf_counter()
        queue.enqueue_many([Queue.prepare_data(func, args) for func, args in jobs])
        wait_until(lambda: int(connection.get("bench:done") or 0) >= len(jobs), 600, 0.01, "raw RQ jobs")
        return time.perf_counter() - started


def make_rules(url, count):
    from django.contrib.auth.models import User

    from alerts.models import Rule
    from workspaces.services import workspace_ensure_personal

    user = User.objects.create_user(f"alerts-{time.time_ns()}", password="unused-bench-pass-1")
    workspace = workspace_ensure_personal(user=user)
    rules = [
        Rule(workspace=workspace, name=f"rule {n}", url=url, expression="#price", headers={}) for n in range(count)
    ]
    return user, Rule.objects.bulk_create(rules)


def queue_runs(rules):
    """One scheduled run per rule, its job pushed when they all commit."""
    from django.db import transaction

    from alerts import services
    from alerts.models import RuleRun

    with transaction.atomic():
        for rule in rules:
            services.run_create(rule, trigger=RuleRun.Trigger.SCHEDULE)


def queue_alerts(rule, count, tag):
    """`count` change alerts of `rule`, each dispatched to its workspace's channels."""
    from django.db import transaction

    from alerts import services
    from alerts.models import Alert

    with transaction.atomic():
        for n in range(count):
            alert = Alert.objects.create(
                workspace_id=rule.workspace_id,
                rule=rule,
                kind="change",
                title=f"change {n}",
                diff="-$ 10.00\n+$ 12.00",
                dedupe_key=f"{tag}:{n}",
            )
            services.alert_dispatch(alert)


def check_round(rules):
    """Seconds to queue one run per rule and see every one finished."""

    from alerts.models import RuleRun

    before = RuleRun.objects.filter(status__in=["succeeded", "failed"]).count()
    started = time.perf_counter()
    queue_runs(rules)
    done = lambda: RuleRun.objects.filter(status__in=["succeeded", "failed"]).count() - before >= len(rules)  # noqa: E731
    wait_until(done, 600, 0.05, "rule runs")
    elapsed = time.perf_counter() - started
    failed = RuleRun.objects.filter(status="failed").count()
    return elapsed, failed


def dispatch_round(user, rule, outside, count):
    """Seconds to create `count` alerts to one JSON-webhook channel and see all delivered."""

    from alerts import services
    from alerts.models import AlertDelivery

    services.channel_create(
        user=user, name="bench", kind="apprise", url=f"json://{OUTSIDE_HOST}:{outside.port}/hook/bench"
    )
    started = time.perf_counter()
    queue_alerts(rule, count, "bench")
    finished = lambda: AlertDelivery.objects.exclude(status__in=["queued", "sending"]).count() >= count  # noqa: E731
    wait_until(finished, 600, 0.05, "deliveries")
    elapsed = time.perf_counter() - started
    return elapsed, AlertDelivery.objects.filter(status="delivered").count()


def run(env, checks=1000, alerts=500):
    from django.conf import settings

    # The rate-limit exemption is decided when a run is enqueued: here, as in the workers.
    settings.ALLOW_PRIVATE_FETCH = True
    settings.RULES_UNLIMITED_DOMAINS = [OUTSIDE_HOST]
    env = bench_env(env)
    with Outside() as outside:
        url = outside.set_page("bench", PAGE)
        hook = f"{outside.url}/hook/raw"
        raw_checks = raw_rq(env, [(tasks.check_page, (url,))] * checks)
        raw_posts = raw_rq(env, [(tasks.post_hook, (hook, {"title": "t", "message": "-$ 10.00\n+$ 12.00"}))] * alerts)
        user, rules = make_rules(url, checks)
        with running(platform_workers("rules-run"), env):
            time.sleep(2)
            first, _ = check_round(rules)  # baselines: one snapshot per rule
            steady, failed = check_round(rules)
        with running(platform_workers("alerts-dispatch"), env):
            time.sleep(2)
            dispatch, delivered = dispatch_round(user, rules[0], outside, alerts)
    return {
        "checks": checks,
        "alerts": alerts,
        "raw_checks": raw_checks,
        "first": first,
        "steady": steady,
        "failed": failed,
        "raw_posts": raw_posts,
        "dispatch": dispatch,
        "delivered": delivered,
    }


def report(results):
    checks, alerts = results["checks"], results["alerts"]
    per_minute = lambda seconds: checks * 60 / seconds  # noqa: E731
    print(f"\nalerts ({checks} rules on one local page, {PROCESSES} worker processes each; per-domain limit lifted)")
    print(f"  raw RQ: GET + extract (baseline)    {per_minute(results['raw_checks']):>9,.0f} checks/min")
    print(f"  rule checks, first (baselines)      {per_minute(results['first']):>9,.0f} checks/min")
    print(
        f"  rule checks, unchanged page         {per_minute(results['steady']):>9,.0f} checks/min"
        f"   {results['raw_checks'] / results['steady']:.2f}× raw RQ's rate; {results['failed']} failed"
    )
    print(f"  raw RQ: POST the JSON (baseline)    {alerts / results['raw_posts']:>9,.0f} alerts/s")
    print(
        f"  alerts dispatched (apprise json://) {alerts / results['dispatch']:>9,.0f} alerts/s"
        f"   {results['raw_posts'] / results['dispatch']:.2f}× raw RQ's rate; {results['delivered']} delivered"
    )


if __name__ == "__main__":
    main(__doc__, run, report, "checks", 1000)
