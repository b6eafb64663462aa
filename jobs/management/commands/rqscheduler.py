"""`manage.py rqscheduler`: django-rq's command with the platform's defaults.

The scheduler is jobs.scheduling.ConveyorScheduler (settings.RQ): rq-scheduler's loop plus
the platform's periodic jobs, the apps' schedules and the watchdog of overdue scheduled
jobs. It schedules on the maintenance queue every SCHEDULER_INTERVAL seconds, and outlives
a Redis outage: it starts again once Redis answers.
"""

import logging
import time

import redis
from django.conf import settings
from django_rq.management.commands import rqscheduler

from jobs.scheduling import MAINTENANCE_QUEUE

log = logging.getLogger("conveyor.scheduler")

RECONNECT_DELAY = 2


class Command(rqscheduler.Command):
    help = "Run the Conveyor scheduler: periodic jobs, source polls, rule checks."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(queue=MAINTENANCE_QUEUE, interval=settings.SCHEDULER_INTERVAL)

    def handle(self, *args, **options):
        if options["verbosity"] >= 2:
            logging.getLogger("rq_scheduler.scheduler").setLevel("DEBUG")
        while True:
            try:
                return super().handle(*args, **options)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("scheduler lost Redis (%s); starting again in %ss", exc, RECONNECT_DELAY)
                time.sleep(RECONNECT_DELAY)
