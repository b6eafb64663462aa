from django.contrib import admin
from django.urls import reverse
from django_rq.settings import get_queues_map

from . import services
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


def dashboard_job_url(queue_name, job_id):
    """The job's page in the django-rq dashboard."""
    return reverse("django_rq:job_detail", args=[get_queues_map()[queue_name], job_id])
