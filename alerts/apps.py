from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from jobs import lifecycle, scheduling

        from . import services

        lifecycle.register(services.RUN)
        lifecycle.register(services.DELIVERY)
        scheduling.register(services.CHECK_PREFIX, services.rule_schedules)
        scheduling.register(services.PRUNE_PREFIX, services.housekeeping_schedules)
