from django.contrib import admin
from django.utils.html import format_html

from core.admin import AttemptInline, WorkspaceAdmin, enqueue_each
from jobs.admin import dashboard_job_url

from . import services
from .models import Project, Publishing


@admin.register(Project)
class ProjectAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name"]


@admin.register(Publishing)
class PublishingAdmin(WorkspaceAdmin):
    inlines = [AttemptInline]
    list_display = [
        "id",
        "project",
        "platform",
        "status",
        "progress_bar",
        "attempts",
        "short_error",
        "job_link",
        "updated_at",
    ]
    list_filter = ["status", "platform", "workspace"]
    search_fields = ["project__name", "eas_build_id", "job_id"]
    readonly_fields = [
        "workspace",
        "project",
        "requested_by",
        "platform",
        "profile",
        "status",
        "attempts",
        "progress_bar",
        "progress_message",
        "eas_build_id",
        "eas_submission_id",
        "builds",
        "artifact_url",
        "last_error",
        "job_link",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
    ]
    exclude = ["job_id", "progress"]
    actions = ["retry_failed"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="progress")
    def progress_bar(self, publishing):
        return format_html(
            '<progress value="{}" max="100" title="{}"></progress> {}%',
            publishing.progress,
            publishing.progress_message,
            publishing.progress,
        )

    @admin.display(description="last error")
    def short_error(self, publishing):
        return (publishing.last_error[:80] + "…") if len(publishing.last_error) > 80 else publishing.last_error

    @admin.display(description="job")
    def job_link(self, publishing):
        if not publishing.job_id:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', dashboard_job_url(services.QUEUE, publishing.job_id), publishing.job_id[:12]
        )

    @admin.action(description="Retry the selected failed publishings")
    def retry_failed(self, request, queryset):
        def retry(publishing):
            services.publishing_retry(publishing=publishing)

        enqueue_each(self, request, queryset, retry, "{count} publishing(s) queued again.")
