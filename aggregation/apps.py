from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation"

    def ready(self):
        from jobs import reconciler, scheduling

        from . import services
        from .models import Fetch

        reconciler.track(Fetch, active_statuses=Fetch.ACTIVE_STATUSES, resume=services.fetch_resume)
        scheduling.register(services.POLL_PREFIX, services.source_schedules)
