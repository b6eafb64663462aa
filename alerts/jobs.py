import logging

from jobs.runtime import current_attempt

from . import services

log = logging.getLogger("conveyor.alerts")


def rule_check(rule_id):
    """Scheduled by rq-scheduler on the rule's interval or cron: queue a run of the rule."""
    return services.rule_check(rule_id=rule_id)


def rule_run(run_id):
    """Fetch, extract, compare; on a real change store a snapshot and dispatch an alert.

    Network errors, 5xx and 429 raise, so the queue retries them (30 s, then 2 min);
    refused URLs, 4xx and broken expressions fail the run at once.
    """
    attempt = current_attempt()
    outcome = services.rule_run(run_id=run_id, job_id=attempt.job_id, last_attempt=attempt.last)
    log.info("job %s: run %s: %s", attempt.job_id, run_id, outcome)
    return outcome


def claims_prune():
    """Hourly (maintenance queue): forget dedupe claims whose window has passed."""
    return f"{services.claims_prune()} expired dedupe claims deleted"


def delivery_send(delivery_id):
    """Send one alert to one channel through apprise or our signed webhook; retried on failure."""
    attempt = current_attempt()
    outcome = services.delivery_send(delivery_id=delivery_id, job_id=attempt.job_id, last_attempt=attempt.last)
    log.info("job %s: delivery %s: %s", attempt.job_id, delivery_id, outcome)
    return outcome
