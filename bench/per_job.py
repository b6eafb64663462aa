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


def burst(worker):
    """Seconds for `worker` to run its queues empty."""
    started = time.perf_counter()
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    return time.perf_counter() - started


def raw_rq(env, jobs):
    """Seconds for one raw RQ SimpleWorker in this process to run `jobs` ([(func, args)])."""
    from rq import Queue, SimpleWorker

    queue = Queue(RAW_QUEUE, connection=redis.Redis.from_url(env["REDIS_URL"]))
    queue.enqueue_many([Queue.prepare_data(func, args) for func, args in jobs])
    return burst(SimpleWorker([queue], connection=queue.connection))


def platform_worker(queue_name):
    from jobs.connection import get_redis
    from jobs.queueing import get_queue
    from jobs.worker import ConveyorWorker

    return ConveyorWorker([get_queue(queue_name)], connection=get_redis())


def rule_checks(rules):
    """Seconds for one ConveyorWorker to check every rule once (each page unchanged)."""
    queue_runs(rules)
    return burst(platform_worker("rules-run"))


def deliveries(user, rule, outside, count):
    """Seconds for one ConveyorWorker to deliver `count` alerts to a JSON webhook channel."""
    from alerts import services

    url = f"json://{OUTSIDE_HOST}:{outside.port}/hook/per-job"
    services.channel_create(user=user, name="per job", kind="apprise", url=url)
    queue_alerts(rule, count, "pj")
    return burst(platform_worker("alerts-dispatch"))


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
        results = {
            "jobs": jobs,
            "raw_checks": raw_rq(env, [(tasks.check_page, (url,))] * jobs),
            "checks": rule_checks(rules),
            "raw_posts": raw_rq(env, [(tasks.post_hook, (hook, {"title": "t", "message": "m"}))] * jobs),
            "deliveries": deliveries(user, rules[0], outside, jobs),
        }
    results["checks_done"] = RuleRun.objects.filter(status="succeeded").count() - jobs
    results["delivered"] = AlertDelivery.objects.filter(status="delivered").count()
    return results


def report(results):
    jobs = results["jobs"]
    ms = {name: results[name] * 1000 / jobs for name in ("raw_checks", "checks", "raw_posts", "deliveries")}
    print(f"\nper job, one worker in one process ({jobs} jobs each; the page unchanged)")
    print(f"  raw RQ: GET + extract (baseline)   {ms['raw_checks']:6.2f} ms")
    print(
        f"  rule check                         {ms['checks']:6.2f} ms   "
        f"{ms['raw_checks'] / ms['checks']:.2f}× raw RQ's rate; {results['checks_done']} succeeded"
    )
    print(f"  raw RQ: POST the JSON (baseline)   {ms['raw_posts']:6.2f} ms")
    print(
        f"  delivery (apprise json://)         {ms['deliveries']:6.2f} ms   "
        f"{ms['raw_posts'] / ms['deliveries']:.2f}× raw RQ's rate; {results['delivered']} delivered"
    )


if __name__ == "__main__":
    main(__doc__, run, report, "jobs", 500)
