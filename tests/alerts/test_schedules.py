"""Scheduled checks: rq-scheduler fires each enabled rule; two schedulers never double a run."""

from datetime import UTC, datetime

from rq.job import Job

from alerts import services
from alerts.models import RuleRun, Snapshot
from jobs import scheduling
from jobs.connection import get_redis
from tests.alerts.conftest import page_with_price
from tests.conftest import wait_for


def next_due(rule_id):
    scheduler = scheduling.get_scheduler()
    return scheduler.connection.zscore(scheduler.scheduled_jobs_key, services.check_job_id(rule_id))


def test_two_schedulers_at_once_run_a_due_rule_once(outside, rule_for, processes):
    rule = rule_for(outside.set_page("sched", page_with_price("$ 1")), interval=3600)
    job = Job.fetch(services.check_job_id(rule["id"]), connection=get_redis())
    scheduling.get_scheduler().change_execution_time(job, datetime.now(UTC))
    processes.scheduler()
    processes.scheduler()
    processes.worker("rules-run", env={"ALLOW_PRIVATE_FETCH": "1"})

    wait_for(lambda: RuleRun.objects.filter(status="succeeded").exists(), timeout=20, message="the scheduled run")
    wait_for(lambda: next_due(rule["id"]) > datetime.now(UTC).timestamp() + 3000, message="the next check")
    runs = RuleRun.objects.filter(rule_id=rule["id"])
    assert runs.count() == 1 and runs.get().trigger == "schedule"
    assert len(outside.requests("/page/sched")) == 1


def test_old_snapshots_are_pruned_beyond_the_last_n(outside, rule_for, run_rule, settings):
    settings.RULE_SNAPSHOTS_KEPT = 3
    rule = rule_for(outside.set_page("many", page_with_price("$ 0")))
    for price in range(6):
        outside.set_page("many", page_with_price(f"$ {price}"))
        run_rule(rule["id"])
    assert list(Snapshot.objects.filter(rule_id=rule["id"]).values_list("text", flat=True)) == ["$ 5", "$ 4", "$ 3"]
