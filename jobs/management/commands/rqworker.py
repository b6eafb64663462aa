"""`manage.py rqworker`: django-rq's command with the platform's defaults.

No queue named: every queue of settings.WORKER_QUEUES, highest priority first. The RQ
scheduler runs beside the worker (retries, delays and polls are promoted). The classes come
from settings.RQ (jobs.worker.ConveyorWorker on jobs.queueing.ConveyorQueue).
"""

from django.conf import settings
from django_rq.management.commands import rqworker


class Command(rqworker.Command):
    help = "Run a Conveyor worker on the given queues (default: WORKER_QUEUES), with RQ's scheduler."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(with_scheduler=True)

    def handle(self, *args, **options):
        super().handle(*(args or settings.WORKER_QUEUES), **options)
