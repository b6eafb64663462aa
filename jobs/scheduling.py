"""The scheduler process: rq-scheduler, plus the platform's periodic jobs kept registered.

The periodic jobs live in Redis like everything rq-scheduler keeps. If Redis loses them
(FLUSHALL, a restart without persistence) the scheduler registers them again on its next
tick, so the reconciler keeps running and can rebuild the rest from the database.
rq-scheduler holds a lock while it enqueues: two schedulers never enqueue a job twice.
"""

import logging
from datetime import datetime, timezone

from django.conf import settings
from rq.job import Job
from rq_scheduler import Scheduler

from .policies import policy_for

log = logging.getLogger("conveyor.scheduler")

MAINTENANCE_QUEUE = "maintenance"


def periodic_jobs():
    """(job id, function path, interval in seconds) of every platform job that repeats."""
    return [
        ("conveyor-reconcile", "jobs.jobs.reconcile", settings.RECONCILE_INTERVAL),
        ("conveyor-cleanup", "jobs.jobs.cleanup", settings.CLEANUP_INTERVAL),
    ]


class ConveyorScheduler(Scheduler):
    def enqueue_jobs(self):
        self.ensure_periodic_jobs()
        return super().enqueue_jobs()

    def ensure_periodic_jobs(self):
        for job_id, func, interval in periodic_jobs():
            if job_id in self and self._interval_of(job_id) == interval:
                continue
            self.cancel(job_id)
            self.schedule(
                datetime.now(timezone.utc),
                func,
                id=job_id,
                interval=interval,
                queue_name=MAINTENANCE_QUEUE,
                timeout=policy_for(MAINTENANCE_QUEUE).timeout,
                result_ttl=policy_for(MAINTENANCE_QUEUE).finished_ttl,
            )
            log.info("scheduled %s every %ss", func, interval)

    def _interval_of(self, job_id):
        try:
            return Job.fetch(job_id, connection=self.connection).meta.get("interval")
        except Exception:
            return None
