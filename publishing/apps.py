from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"
    verbose_name = "Publishing"

    def ready(self):
        from jobs import reconciler

        from . import services
        from .models import Publishing

        reconciler.track(Publishing, active_statuses=Publishing.ACTIVE_STATUSES, resume=services.publishing_resume)
