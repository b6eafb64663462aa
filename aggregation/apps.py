from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation"

    def ready(self):
        from django.db.models import Q

        from jobs import lifecycle, reconciler, scheduling

        from . import services
        from .models import Fetch

        lifecycle.register(services.FETCH)
        lifecycle.register(services.ACTION)
        reconciler.track(
            Fetch,
            name="aggregation.Fetch:notify",
            pending=Q(status=Fetch.Status.SUCCEEDED, new_posts__gt=0, notified_at=None),
            job_field="notify_job_id",
            resume=services.notify_resume,
        )
        scheduling.register(services.POLL_PREFIX, services.source_schedules)
