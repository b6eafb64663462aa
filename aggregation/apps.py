from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation"

    def ready(self):
        from django.db.models import Q

        from jobs import reconciler, scheduling

        from . import services
        from .models import Fetch, UserAction

        reconciler.track(Fetch, active_statuses=Fetch.ACTIVE_STATUSES, resume=services.fetch_resume)
        reconciler.track(
            Fetch,
            name="aggregation.Fetch:notify",
            pending=Q(status=Fetch.Status.SUCCEEDED, new_posts__gt=0, notified_at=None),
            job_field="notify_job_id",
            resume=services.notify_resume,
        )
        reconciler.track(UserAction, active_statuses=UserAction.ACTIVE_STATUSES, resume=services.action_resume)
        scheduling.register(services.POLL_PREFIX, services.source_schedules)
