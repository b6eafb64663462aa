from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from jobs import reconciler, scheduling

        from . import services
        from .models import AlertDelivery, RuleRun

        reconciler.track(RuleRun, active_statuses=RuleRun.ACTIVE_STATUSES, resume=services.run_resume)
        reconciler.track(AlertDelivery, active_statuses=AlertDelivery.ACTIVE_STATUSES, resume=services.delivery_resume)
        scheduling.register(services.CHECK_PREFIX, services.rule_schedules)
        scheduling.register(services.PRUNE_PREFIX, services.housekeeping_schedules)
