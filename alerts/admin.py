from django import forms
from django.contrib import admin, messages
from django.db.models import Prefetch
from django.utils.html import format_html, format_html_join
from rest_framework.exceptions import ValidationError

from core.admin import (
    URL_FIELDS,
    AttemptInline,
    GuardedUrlForm,
    RecordAdmin,
    ServiceAdmin,
    WorkspaceAdmin,
    enqueue_each,
)
from workspaces.services import workspaces_of

from . import services
from .models import Alert, AlertDelivery, Channel, PlatformRoute, Rule, RuleRun, Snapshot
from .serializers import ChannelSerializer

RECENT_RUNS = 12


def run_colour(run):
    if run.status == RuleRun.Status.FAILED:
        return "#d93025"
    if run.status != RuleRun.Status.SUCCEEDED:
        return "#bdc1c6"
    return "#1a73e8" if run.changed else "#34a853"


def run_title(run):
    what = "changed" if run.changed and run.status == RuleRun.Status.SUCCEEDED else run.status
    return f"#{run.pk} {run.requested_at:%Y-%m-%d %H:%M:%S}: {what} {run.error[:100]}".strip()


class RuleForm(GuardedUrlForm):
    """A rule's channels are its workspace's: only those are offered (a new rule: those of the
    workspaces offered, each named with its workspace), and another's is refused."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("channels")
        if field is None:
            return
        if self.instance.pk:
            field.queryset = Channel.objects.filter(workspace_id=self.instance.workspace_id)
        else:
            workspaces = self.fields["workspace"].queryset
            field.queryset = Channel.objects.filter(workspace__in=workspaces).select_related("workspace")
            field.label_from_instance = lambda channel: f"{channel.name} ({channel.workspace})"

    def clean(self):
        data = super().clean()
        workspace, chosen = data.get("workspace"), data.get("channels") or []
        if workspace and any(channel.workspace_id != workspace.pk for channel in chosen):
            self.add_error("channels", "Choose channels of the rule's workspace, or none.")
        return data


@admin.register(Rule)
class RuleAdmin(ServiceAdmin):
    form = RuleForm
    formfield_overrides = URL_FIELDS
    list_display = [
        "name",
        "domain",
        "fetch_mode",
        "enabled",
        "recent_runs",
        "last_run_at",
        "last_changed_at",
        "consecutive_errors",
        "last_error",
    ]
    list_filter = ["enabled", "fetch_mode", "extractor", "priority", "workspace"]
    search_fields = ["name", "url", "expression"]
    filter_horizontal = ["channels"]
    readonly_fields = [
        "consecutive_errors",
        "error_alerted",
        "last_error",
        "last_run_at",
        "last_changed_at",
        "created_at",
        "updated_at",
    ]
    actions = ["run_now"]

    def create(self, request, fields):
        return services.rule_create(**fields)

    def update(self, request, rule, changes):
        return services.rule_update(rule=rule, **changes)

    def delete_model(self, request, obj):
        services.rule_delete(rule=obj)

    def get_queryset(self, request):
        latest = RuleRun.objects.order_by("-id").only("id", "rule_id", "status", "changed", "error", "requested_at")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("runs", queryset=latest[:RECENT_RUNS], to_attr="recent"))
        )

    @admin.display(description=f"last {RECENT_RUNS} runs")
    def recent_runs(self, rule):
        """A strip of squares, oldest to newest: green unchanged, blue changed, red failed, grey waiting."""
        runs = getattr(rule, "recent", None)
        if runs is None:
            runs = list(rule.runs.order_by("-id")[:RECENT_RUNS])
        squares = format_html_join(
            "",
            '<span title="{}" style="display:inline-block;width:9px;height:14px;margin-right:2px;background:{}"></span>',
            ((run_title(run), run_colour(run)) for run in reversed(runs)),
        )
        return squares or "—"

    @admin.action(description="Run the selected rules now")
    def run_now(self, request, queryset):
        def run(rule):
            services.rule_run_request(user=request.user, rule=rule)

        enqueue_each(self, request, queryset, run, "{count} run(s) queued, ahead of the scheduled ones.")


@admin.register(RuleRun)
class RuleRunAdmin(RecordAdmin):
    inlines = [AttemptInline]
    list_display = [
        "id",
        "rule",
        "trigger",
        "fetch_mode",
        "status",
        "attempts",
        "http_status",
        "duration_ms",
        "changed",
        "error",
        "requested_at",
    ]
    list_filter = ["status", "trigger", "changed", "fetch_mode"]
    search_fields = ["rule__name", "error"]
    actions = ["retry"]

    @admin.action(description="Retry the selected failed runs")
    def retry(self, request, queryset):
        def retry_one(run):
            services.run_retry(user=request.user, run=run)

        enqueue_each(self, request, queryset.select_related("rule"), retry_one, "{count} retry run(s) queued.")


@admin.register(Snapshot)
class SnapshotAdmin(RecordAdmin):
    workspace_path = "rule__workspace"
    list_display = ["id", "rule", "fingerprint", "fetched_at"]
    search_fields = ["rule__name", "text"]


def rendered_diff(text):
    """A unified diff, its added lines green and removed lines red."""
    styles = {"+": "color:#137333;background:#e6f4ea", "-": "color:#a50e0e;background:#fce8e6", "@": "color:#5f6368"}
    lines = format_html_join(
        "\n",
        '<span style="{}">{}</span>',
        (
            (styles.get(line[:1], "") if not line.startswith(("+++", "---")) else "color:#5f6368", line)
            for line in text.splitlines()
        ),
    )
    return format_html('<pre style="white-space:pre-wrap;font-size:12px;line-height:1.4">{}</pre>', lines)


class DeliveryInline(admin.TabularInline):
    model = AlertDelivery
    fields = ["channel", "status", "attempts", "last_error", "delivered_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(RecordAdmin):
    list_display = ["title", "rule", "kind", "created_at", "delivery_summary"]
    list_filter = ["kind"]
    search_fields = ["title", "rule__name", "dedupe_key"]
    inlines = [DeliveryInline]
    exclude = ["diff"]

    def get_readonly_fields(self, request, obj=None):
        return [name for name in super().get_readonly_fields(request, obj) if name != "diff"] + ["change"]

    @admin.display(description="diff")
    def change(self, alert):
        return rendered_diff(alert.diff)

    @admin.display(description="deliveries")
    def delivery_summary(self, alert):
        counts = {}
        for delivery in alert.deliveries.all():
            counts[delivery.status] = counts.get(delivery.status, 0) + 1
        return ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "no channels"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("deliveries")


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(RecordAdmin):
    list_display = ["id", "alert", "channel", "status", "attempts", "last_error", "created_at", "delivered_at"]
    inlines = [AttemptInline]
    list_filter = ["status", "channel"]
    actions = ["resend"]

    @admin.action(description="Send the selected deliveries again")
    def resend(self, request, queryset):
        def resend_one(delivery):
            services.delivery_resend(delivery=delivery)

        enqueue_each(self, request, queryset, resend_one, "{count} deliver(ies) queued again.")


class ChannelForm(forms.ModelForm):
    """The URL is write-only: never rendered back, left unchanged when the field is empty."""

    url = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False),
        help_text="An apprise URL (json://…, slack://…, mailto://…) or the webhook's https:// URL. "
        "Never shown again; leave empty to keep the current one.",
    )

    class Meta:
        model = Channel
        fields = ["workspace", "name", "kind", "url", "enabled"]

    def clean(self):
        data = super().clean()
        url, kind = data.get("url"), data.get("kind")
        if not url and self.instance.pk is None:
            self.add_error("url", "A new channel needs its URL.")
        elif url:
            try:
                ChannelSerializer.checked_url(kind, url)
            except ValidationError as exc:
                self.add_error("url", " ".join(map(str, exc.detail.get("url", exc.detail))))
        if self.instance.pk and kind != self.instance.kind:
            self.add_error("kind", "A channel's kind cannot change; create a new channel.")
        return data


@admin.register(Channel)
class ChannelAdmin(WorkspaceAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "service", "enabled", "workspace", "created_at"]
    list_filter = ["kind", "enabled"]
    actions = ["send_test"]

    def save_model(self, request, obj, form, change):
        """Through the channel services, as the API: the URL checked, a webhook's secret made."""
        data = form.cleaned_data
        fields = {"name": data["name"], "enabled": data["enabled"]}
        if change:
            services.channel_update(channel=Channel.objects.get(pk=obj.pk), url=data.get("url") or None, **fields)
            return
        channel, secret = services.channel_create(
            workspace=data["workspace"], kind=data["kind"], url=data["url"], **fields
        )
        obj.pk = channel.pk
        if secret:
            messages.warning(request, f"The webhook's signing secret, shown only now: {secret}")

    @admin.action(description="Send a test message to the selected channels")
    def send_test(self, request, queryset):
        def test(channel):
            services.channel_test(channel=channel)

        enqueue_each(self, request, queryset, test, "{count} test message(s) queued.")


class PlatformRouteForm(forms.ModelForm):
    """A route's workspace is its channel's: an existing route offers only its workspace's channels."""

    class Meta:
        model = PlatformRoute
        fields = ["event", "channel", "threshold_minutes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["channel"].queryset = Channel.objects.filter(workspace_id=self.instance.workspace_id)

    def clean(self):
        data = super().clean()
        event, threshold = data.get("event"), data.get("threshold_minutes")
        if event and threshold is not None and event not in PlatformRoute.PLATFORM_WIDE:
            self.add_error("threshold_minutes", "Only queue_backlog and no_worker routes have a threshold.")
        return data


@admin.register(PlatformRoute)
class PlatformRouteAdmin(WorkspaceAdmin):
    """Saved through the route services, as the API's: the workspace is the channel's, and a
    health route without a threshold gets the default one."""

    form = PlatformRouteForm
    list_display = ["event", "channel", "threshold_minutes", "workspace", "created_at"]
    list_filter = ["event", "workspace"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "channel" and not request.user.is_superuser:
            kwargs["queryset"] = Channel.objects.filter(workspace__in=workspaces_of(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {"event": data["event"], "threshold_minutes": data.get("threshold_minutes")}
        if change:
            route = PlatformRoute.objects.get(pk=obj.pk)
            saved = services.platform_route_update(route=route, channel_id=data["channel"].pk, **fields)
        else:
            saved = services.platform_route_create(channel=data["channel"], **fields)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.platform_route_delete(route=obj)
