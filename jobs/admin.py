from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django_rq.settings import get_queues_map

from . import services
from .connection import QueueUnavailable
from .errors import ServiceError
from .models import PausedQueue


@admin.register(PausedQueue)
class PausedQueueAdmin(admin.ModelAdmin):
    list_display = ["name", "paused_at", "paused_by", "reason"]
    readonly_fields = ["paused_at", "paused_by"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.sync_paused_to_redis()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.sync_paused_to_redis()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        services.sync_paused_to_redis()


# Django 6 will assume https:// for a URL typed without a scheme; so do we, already.
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


class RecordAdmin(admin.ModelAdmin):
    """Rows the system writes (fetches, runs, posts, deliveries…): shown, never edited."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # A view page, without Save buttons; the admin's actions (retry, resend) still apply.
        return False


def dashboard_job_url(queue_name, job_id):
    """The job's page in the django-rq dashboard."""
    return reverse("django_rq:job_detail", args=[get_queues_map()[queue_name], job_id])


def enqueue_each(model_admin, request, queryset, enqueue_one, done):
    """An admin action's loop: `enqueue_one(row)` for each selected row. A refused row is
    reported and skipped; Redis being down stops the loop and says so once."""
    queued = 0
    for row in queryset:
        try:
            enqueue_one(row)
            queued += 1
        except ServiceError as exc:
            model_admin.message_user(request, f"{row}: {exc.message}", messages.WARNING)
        except QueueUnavailable:
            model_admin.message_user(request, "The job queue is unavailable; nothing more was queued.", messages.ERROR)
            break
    if queued:
        model_admin.message_user(request, done.format(count=queued), messages.SUCCESS)
