from django.contrib import admin
from django.db.models import Count

from core.admin import (
    URL_FIELDS,
    AttemptInline,
    GuardedUrlForm,
    RecordAdmin,
    ServiceAdmin,
    WorkspaceAdmin,
    enqueue_each,
)

from . import services
from .models import Fetch, Notification, Post, RemoteAccount, Source, Subscription, UserAction


@admin.register(Source)
class SourceAdmin(ServiceAdmin):
    form = GuardedUrlForm
    formfield_overrides = URL_FIELDS
    list_display = [
        "name",
        "platform",
        "host",
        "enabled",
        "last_fetched_at",
        "consecutive_failures",
        "posts_count",
        "last_error",
    ]
    list_filter = ["platform", "enabled", "workspace"]
    search_fields = ["name", "url", "target"]
    readonly_fields = ["cursor", "consecutive_failures", "last_error", "last_fetched_at", "created_at", "updated_at"]
    actions = ["fetch_now", "enable", "disable"]

    def create(self, request, fields):
        return services.source_create(**fields)

    def update(self, request, source, changes):
        return services.source_update(source=source, **changes)

    def delete_model(self, request, obj):
        services.source_delete(source=obj)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(posts_total=Count("posts"))

    @admin.display(description="posts", ordering="posts_total")
    def posts_count(self, source):
        return source.posts_total

    @admin.action(description="Fetch the selected sources now")
    def fetch_now(self, request, queryset):
        def fetch(source):
            services.source_fetch(user=request.user, source=source)

        enqueue_each(self, request, queryset, fetch, "{count} fetch(es) queued.")

    @admin.action(description="Enable the selected sources")
    def enable(self, request, queryset):
        for source in queryset:
            services.source_update(source=source, enabled=True)

    @admin.action(description="Disable the selected sources")
    def disable(self, request, queryset):
        for source in queryset:
            services.source_update(source=source, enabled=False)


@admin.register(Fetch)
class FetchAdmin(RecordAdmin):
    list_display = ["id", "source", "trigger", "status", "attempts", "new_posts", "pages", "run_after", "last_error"]
    inlines = [AttemptInline]
    list_filter = ["status", "trigger"]


@admin.register(Post)
class PostAdmin(RecordAdmin):
    list_display = ["__str__", "source", "author_name", "published_at"]
    list_filter = ["source"]
    search_fields = ["title", "content_text", "author_name", "remote_id"]


@admin.register(Subscription)
class SubscriptionAdmin(WorkspaceAdmin):
    list_display = ["user", "kind", "value", "channel", "workspace", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value", "user__username"]


@admin.register(Notification)
class NotificationAdmin(RecordAdmin):
    list_display = ["user", "post", "subscription", "created_at", "read_at"]
    list_filter = ["read_at"]


@admin.register(UserAction)
class UserActionAdmin(RecordAdmin):
    list_display = ["id", "user", "action", "post", "status", "attempts", "last_error", "created_at"]
    inlines = [AttemptInline]
    list_filter = ["status", "action"]


@admin.register(RemoteAccount)
class RemoteAccountAdmin(WorkspaceAdmin):
    list_display = ["user", "host", "instance_url", "created_at"]
    exclude = ["credentials"]
    readonly_fields = ["user", "workspace", "host", "instance_url", "created_at"]

    def has_add_permission(self, request):
        return False
