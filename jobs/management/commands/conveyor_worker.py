from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from redis import Redis
from rq.worker_pool import WorkerPool

from jobs.policies import all_policies
from jobs.worker import ConveyorQueue, ConveyorWorker


def default_processes(names):
    """A worker for one queue gets that queue's `workers`; a shared pool gets WORKER_PROCESSES."""
    if len(names) == 1:
        return all_policies()[names[0]].workers
    return settings.WORKER_PROCESSES


class Command(BaseCommand):
    help = "Run a pool of Conveyor workers (SimpleWorker processes) on the given queues, or all of them."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", help="queue names, highest priority first (default: WORKER_QUEUES)")
        parser.add_argument(
            "--processes",
            type=int,
            help="pool size (default: the queue's `workers` policy for one queue, else WORKER_PROCESSES)",
        )
        parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")

    def handle(self, *args, **options):
        names = options["queues"] or settings.WORKER_QUEUES
        unknown = set(names) - set(all_policies())
        if unknown:
            raise CommandError(f"unknown queues: {', '.join(sorted(unknown))}")
        processes = options["processes"] if options["processes"] is not None else default_processes(names)
        if processes < 1:
            raise CommandError("--processes must be at least 1")
        level = "DEBUG" if options["verbosity"] > 1 else "WARNING"
        connection = Redis.from_url(settings.REDIS_URL)
        # Forked workers must not share the parent's database connections.
        connections.close_all()
        if processes == 1:
            self.run_single(names, connection, options["burst"], level)
        else:
            self.run_pool(names, connection, processes, options["burst"], level)

    def run_single(self, names, connection, burst, level):
        queues = [ConveyorQueue(name, connection=connection) for name in names]
        worker = ConveyorWorker(queues, connection=connection)
        worker.work(burst=burst, with_scheduler=True, logging_level=level)

    def run_pool(self, names, connection, processes, burst, level):
        pool = WorkerPool(
            names,
            connection=connection,
            num_workers=processes,
            worker_class=ConveyorWorker,
            queue_class=ConveyorQueue,
        )
        self.stdout.write(f"conveyor worker pool: {processes} processes on {', '.join(names)}")
        pool.start(burst=burst, logging_level=level)
