from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"
    verbose_name = "Publishing"

    def ready(self):
        from jobs import lifecycle, scheduling

        from . import services

        lifecycle.register(services.PUBLISHING)
        scheduling.register(services.PURGE_PREFIX, services.housekeeping_schedules)
