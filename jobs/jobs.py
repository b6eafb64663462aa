"""The platform's own periodic jobs, scheduled by `manage.py rqscheduler`."""

from . import attempts, charts, reconciler, retention


def reconcile():
    """Re-enqueue unfinished rows that have no live job. Safe to run concurrently."""
    return reconciler.reconcile()


def cleanup():
    """Trim finished and failed job registries to each queue's retention policy."""
    return retention.trim_all()


def sample_queues():
    """Record each queue's backlog and oldest queued job for the charts (jobs/charts.py)."""
    return {name: sample.queued for name, sample in charts.sample_queues().items()}


def attempts_prune():
    """Hourly: forget job attempts older than ATTEMPTS_KEPT_DAYS days."""
    return f"{attempts.prune()} attempts older than the retention deleted"
