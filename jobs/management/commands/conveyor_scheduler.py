import logging
import time

import redis
from django.conf import settings
from django.core.management.base import BaseCommand
from redis import Redis

from jobs.scheduling import MAINTENANCE_QUEUE, ConveyorScheduler

log = logging.getLogger("conveyor.scheduler")


class Command(BaseCommand):
    help = "Run the scheduler: rq-scheduler's loop plus the platform's periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="enqueue what is due once, then exit")

    def handle(self, *args, **options):
        connection = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=10)
        while True:
            scheduler = ConveyorScheduler(
                queue_name=MAINTENANCE_QUEUE, connection=connection, interval=settings.SCHEDULER_INTERVAL
            )
            try:
                scheduler.run(burst=options["burst"])
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # Survive a Redis outage: start again once it answers.
                log.warning("scheduler lost Redis (%s); retrying in 2s", exc)
                time.sleep(2)
