"""Per-job cost of a rule check and of a delivery, one worker in this process: the jobs are
queued first, then one worker runs them all (burst) and the clock reads ms per job. The
baseline, in the same run and the same process: a raw RQ SimpleWorker running only the core
work (GET and extract; POST the JSON, bench/tasks.py) with a kept HTTP client.

alerts.py measures the same work at its rate with four worker processes, which on a small
machine also measures how the processes share its cores; this one leaves the sharing out,
so its figures move less from run to run: use it for a change's before and after.
"""

import time

import redis

from bench import tasks
from bench.alerts import PAGE, make_rules, queue_alerts, queue_runs
from bench.common import main
from bench.variants import RAW_QUEUE
from tests.fakes.outside_fake import OUTSIDE_HOST, Outside


class Burst:
    """One worker running its queues empty: the seconds it took and the SQL statements this
    process sent meanwhile through Django's cursors (so not psycopg's own BEGIN and COMMIT,
    nor the health check's ping; SQLite's BEGIN IMMEDIATE is counted)."""

    def __init__(self, worker):
        from django.db import connection

        self.statements = 0
        started = time.perf_counter()
        with connection.execute_wrapper(self._count):
            worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
        self.seconds = time.perf_counter() - started

    def _count(self, execute, sql, params, many, context):
        self.statements += 1
        return execute(sql, params, many, context)


def raw_rq(env, jobs):
    """Seconds for one raw RQ SimpleWorker in this process to run `jobs` ([(func, args)])."""
    from rq import Queue, SimpleWorker

    queue = Queue(RAW_QUEUE, connection=redis.Redis.from_url(env["REDIS_URL"]))
    queue.enqueue_many([Queue.prepare_data(func, args) for func, args in jobs])
    return Burst(SimpleWorker([queue], connection=queue.connection)).seconds


def platform_worker(queue_name):
    from jobs.connection import get_redis
    from jobs.queueing import get_queue
    from jobs.worker import ConveyorWorker

    return ConveyorWorker([get_queue(queue_name)], connection=get_redis())


def rule_checks(rules):
    """The Burst of one ConveyorWorker checking every rule once (each page unchanged)."""
    queue_runs(rules)
    return Burst(platform_worker("rules-run"))


def deliveries(user, rule, outside, count):
    """The Burst of one ConveyorWorker delivering `count` alerts to a JSON webhook channel."""
    from alerts import services

    url = f"json://{OUTSIDE_HOST}:{outside.port}/hook/per-job"
    services.channel_create(user=user, name="per job", kind="apprise", url=url)
    queue_alerts(rule, count, "pj")
    return Burst(platform_worker("alerts-dispatch"))


def run(env, jobs=500):
    from django.conf import settings

    from alerts.models import AlertDelivery, RuleRun

    settings.ALLOW_PRIVATE_FETCH = True
    settings.RULES_UNLIMITED_DOMAINS = [OUTSIDE_HOST]
    with Outside() as outside:
        url = outside.set_page("per-job", PAGE)
        hook = f"{outside.url}/hook/raw"
        user, rules = make_rules(url, jobs)
        rule_checks(rules)  # the baselines: one snapshot per rule
        raw_checks = raw_rq(env, [(tasks.check_page, (url,))] * jobs)
        checks = rule_checks(rules)
        raw_posts = raw_rq(env, [(tasks.post_hook, (hook, {"title": "t", "message": "m"}))] * jobs)
        sent = deliveries(user, rules[0], outside, jobs)
    results = {
        "jobs": jobs,
        "raw_checks": raw_checks,
        "checks": checks.seconds,
        "check_statements": checks.statements,
        "raw_posts": raw_posts,
        "deliveries": sent.seconds,
        "delivery_statements": sent.statements,
    }
    # Only this benchmark's rows: run_all runs it on the database alerts.py used before it.
    results["checks_done"] = RuleRun.objects.filter(rule__in=rules, status="succeeded").count() - jobs
    results["delivered"] = AlertDelivery.objects.filter(alert__rule__in=rules, status="delivered").count()
    return results


def report(results):
    jobs = results["jobs"]
    ms = {name: results[name] * 1000 / jobs for name in ("raw_checks", "checks", "raw_posts", "deliveries")}
    statements = {name: results[f"{name}_statements"] / jobs for name in ("check", "delivery")}
    print(f"\nper job, one worker in one process ({jobs} jobs each; the page unchanged)")
    print(f"  raw RQ: GET + extract (baseline)   {ms['raw_checks']:6.2f} ms")
    print(
        f"  rule check                         {ms['checks']:6.2f} ms   "
        f"{ms['raw_checks'] / ms['checks']:.2f}× raw RQ's rate; {results['checks_done']} succeeded; "
        f"{statements['check']:.1f} SQL statements a job"
    )
    print(f"  raw RQ: POST the JSON (baseline)   {ms['raw_posts']:6.2f} ms")
    print(
        f"  delivery (apprise json://)         {ms['deliveries']:6.2f} ms   "
        f"{ms['raw_posts'] / ms['deliveries']:.2f}× raw RQ's rate; {results['delivered']} delivered; "
        f"{statements['delivery']:.1f} SQL statements a job"
    )


if __name__ == "__main__":
    main(__doc__, run, report, "jobs", 500)
