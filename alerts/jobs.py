from jobs import lifecycle

from . import services


def rule_check(rule_id):
    """Scheduled by rq-scheduler on the rule's interval or cron: queue a run of the rule."""
    return services.rule_check(rule_id=rule_id)


def rule_run(run_id):
    """Fetch, extract, compare; on a real change store a snapshot and dispatch an alert.

    Network errors, 5xx and 429 raise, so the queue retries them (30 s, then 2 min);
    refused URLs, 4xx and broken expressions fail the run, and this job, at once.
    """
    return lifecycle.run(services.RUN, run_id, services.rule_run)


def claims_prune():
    """Hourly (maintenance queue): forget dedupe claims whose window has passed."""
    return f"{services.claims_prune()} expired dedupe claims deleted"


def delivery_send(delivery_id):
    """Send one alert to one channel through apprise or our signed webhook; retried on failure."""
    return lifecycle.run(services.DELIVERY, delivery_id, services.delivery_send)


def platform_check():
    """Every PLATFORM_CHECK_INTERVAL (maintenance queue): queue backlogs and live workers
    against every health route; a condition past a route's threshold is sent to its channel."""
    from . import platform

    return f"{len(platform.platform_check())} platform alert(s) queued"
