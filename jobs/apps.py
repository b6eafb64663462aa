from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Job platform"

    def ready(self):
        from . import attempts, scheduling

        scheduling.register(attempts.PRUNE_PREFIX, attempts.housekeeping_schedules)
