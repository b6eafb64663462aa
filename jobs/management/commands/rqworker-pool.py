"""`manage.py rqworker-pool`: django-rq's command with the platform's defaults.

No queue named: every queue of settings.WORKER_QUEUES, highest priority first. Pool size
(--num-workers): the queue's concurrency when one queue is named, else WORKER_PROCESSES.
A pool serving several queues keeps one process for the others whatever floods one queue
(jobs/concurrency.py): its workers learn the pool's size when they are forked.
"""

import gc
from importlib import import_module

from django.conf import settings

from jobs import concurrency
from jobs.policies import policy_for

stock = import_module("django_rq.management.commands.rqworker-pool")


def default_pool_size(queue_names):
    if len(queue_names) == 1:
        return policy_for(queue_names[0]).concurrency
    return settings.WORKER_PROCESSES


class Command(stock.Command):
    help = (
        "Run a pool of Conveyor workers on the given queues (default: WORKER_QUEUES); --num-workers "
        "defaults to the queue's concurrency for one queue, else WORKER_PROCESSES."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(num_workers=None)

    def handle(self, *args, **options):
        queue_names = args or tuple(settings.WORKER_QUEUES)
        options["num_workers"] = options["num_workers"] or default_pool_size(queue_names)
        concurrency.join_pool(options["num_workers"] if len(queue_names) > 1 else 1)
        # What the parent holds now is never freed: out of the collector's sight, a forked
        # worker's collections do not write to (and so copy) every page it shares.
        gc.collect()
        gc.freeze()
        super().handle(*queue_names, **options)
