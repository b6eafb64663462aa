from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from jobs import lifecycle, platform_events, scheduling

        from . import platform, services

        lifecycle.register(services.RUN)
        lifecycle.register(services.DELIVERY)
        scheduling.register(services.CHECK_PREFIX, services.rule_schedules)
        scheduling.register(services.PRUNE_PREFIX, services.housekeeping_schedules)
        scheduling.register(platform.CHECK_PREFIX, platform.check_schedules)
        scheduling.on_tick(platform.scheduler_tick)
        platform_events.subscribe(platform.route_row_event)
