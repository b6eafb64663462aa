import re

import httpx
from django.conf import settings
from rest_framework import serializers

from core import outbound
from core.serializers import PublicUrlField, StrictIntegerField, StrictSerializer
from jobs import scheduling
from jobs.serializers import attempt_count_field, attempts_field

from . import channels, extract
from .models import Alert, AlertDelivery, Channel, PlatformRoute, Rule, RuleRun, Snapshot

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# Set by the fetch itself; a rule may not override them.
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class ChannelIdsField(serializers.ListField):
    """A rule's channels by id; the service checks they are the rule's workspace's."""

    child = StrictIntegerField(min_value=1)

    def to_representation(self, channels):
        return sorted(channel.pk for channel in channels.all())


class RuleSerializer(StrictSerializer, serializers.ModelSerializer):
    workspace = serializers.IntegerField(source="workspace_id", required=False)
    url = PublicUrlField(max_length=2000)
    ignore_patterns = serializers.ListField(child=serializers.CharField(max_length=500), max_length=20, required=False)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=4000, allow_blank=True), write_only=True, required=False
    )
    header_names = serializers.SerializerMethodField()
    domain = serializers.CharField(read_only=True)
    interval = StrictIntegerField(min_value=1, max_value=30 * 86400, required=False)
    error_threshold = StrictIntegerField(min_value=1, max_value=1000, required=False)
    channels = ChannelIdsField(
        max_length=100,
        required=False,
        help_text="Channels of the rule's workspace that get its alerts; empty: every enabled channel.",
    )

    class Meta:
        model = Rule
        fields = [
            "id",
            "workspace",
            "name",
            "url",
            "domain",
            "fetch_mode",
            "extractor",
            "expression",
            "collapse_whitespace",
            "ignore_patterns",
            "headers",
            "header_names",
            "interval",
            "cron",
            "enabled",
            "priority",
            "error_threshold",
            "channels",
            "consecutive_errors",
            "last_error",
            "last_run_at",
            "last_changed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "domain",
            "consecutive_errors",
            "last_error",
            "last_run_at",
            "last_changed_at",
            "created_at",
            "updated_at",
        ]

    def get_header_names(self, rule) -> list[str]:
        """Header values may be credentials: only their names are shown back."""
        return sorted(rule.headers or {})

    def validate_interval(self, value):
        if value < settings.RULE_MIN_INTERVAL:
            raise serializers.ValidationError(f"At least {settings.RULE_MIN_INTERVAL} seconds.")
        return value

    def validate_cron(self, value):
        problem = value and scheduling.cron_problem(value, settings.RULE_MIN_INTERVAL)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_ignore_patterns(self, patterns):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise serializers.ValidationError(f"{pattern!r} is not a regular expression: {exc}.") from None
        return patterns

    def validate_headers(self, headers):
        if len(headers) > 30:
            raise serializers.ValidationError("At most 30 headers.")
        for name, value in headers.items():
            if not HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise serializers.ValidationError(f"{name!r} cannot be sent as a header.")
            if "\r" in value or "\n" in value:
                raise serializers.ValidationError(f"The value of {name!r} has a line break.")
        return headers

    def validate(self, data):
        # A new rule without an extractor gets the model's default (CSS), as it is saved.
        default_kind = Rule._meta.get_field("extractor").default
        kind = data.get("extractor", getattr(self.instance, "extractor", default_kind))
        expression = data.get("expression", getattr(self.instance, "expression", None))
        if "extractor" in data or "expression" in data:
            try:
                extract.validate(kind, expression)
            except extract.ExtractError as exc:
                raise serializers.ValidationError({"expression": [str(exc)]}) from None
        return data


class RunRequestSerializer(StrictSerializer):
    force_mode = serializers.ChoiceField(choices=Rule.FetchMode.choices, required=False)
    debug = serializers.BooleanField(required=False, default=False)


class RuleRunSerializer(serializers.ModelSerializer):
    attempt_count = attempt_count_field()
    attempts = attempts_field()

    class Meta:
        model = RuleRun
        fields = [
            "id",
            "rule",
            "trigger",
            "fetch_mode",
            "status",
            "attempt_count",
            "http_status",
            "duration_ms",
            "changed",
            "error",
            "debug",
            "debug_output",
            "snapshot",
            "requested_at",
            "started_at",
            "finished_at",
            "attempts",
        ]


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Snapshot
        fields = ["id", "rule", "revision", "fingerprint", "text", "fetched_at"]


class DeliverySerializer(serializers.ModelSerializer):
    attempt_count = attempt_count_field()
    attempts = attempts_field()

    class Meta:
        model = AlertDelivery
        fields = [
            "id",
            "alert",
            "channel",
            "status",
            "attempt_count",
            "last_error",
            "created_at",
            "updated_at",
            "delivered_at",
            "attempts",
        ]


class AlertSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = ["id", "rule", "run", "kind", "title", "diff", "dedupe_key", "created_at", "deliveries"]


class AlertQuerySerializer(serializers.Serializer):
    rule = serializers.IntegerField(min_value=1, required=False)
    kind = serializers.ChoiceField(choices=Alert.Kind.choices, required=False)


class ChannelSerializer(StrictSerializer, serializers.ModelSerializer):
    """The URL is write-only: it often holds a token. A webhook's secret is shown once."""

    workspace = serializers.IntegerField(source="workspace_id", required=False)
    url = serializers.CharField(write_only=True, max_length=2000)

    class Meta:
        model = Channel
        fields = ["id", "workspace", "name", "kind", "url", "service", "enabled", "created_at", "updated_at"]
        read_only_fields = ["id", "service", "created_at", "updated_at"]

    def validate(self, data):
        if self.instance is not None and "kind" in data and data["kind"] != self.instance.kind:
            raise serializers.ValidationError({"kind": ["A channel's kind cannot change; create a new channel."]})
        kind = data.get("kind", getattr(self.instance, "kind", None))
        if "url" in data:
            data["url"] = self.checked_url(kind, data["url"])
        return data

    @staticmethod
    def checked_url(kind, url):
        if kind == Channel.Kind.WEBHOOK:
            try:
                return PublicUrlField(max_length=2000).run_validation(url)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"url": exc.detail}) from None
        try:
            channels.check_apprise_url(url)
        except channels.ChannelRefused as exc:
            raise serializers.ValidationError({"url": [str(exc)]}) from None
        except outbound.FetchRefused as exc:
            raise serializers.ValidationError({"url": [f"Refused: {exc}."]}) from None
        except httpx.HTTPError:
            pass  # a name that does not resolve today may tomorrow: each send checks again
        return url


class PlatformRouteSerializer(StrictSerializer, serializers.ModelSerializer):
    """A platform event sent to a channel; the route belongs to the channel's workspace."""

    workspace = serializers.IntegerField(source="workspace_id", read_only=True)
    channel = StrictIntegerField(source="channel_id", min_value=1)
    threshold_minutes = StrictIntegerField(
        min_value=1,
        max_value=7 * 24 * 60,
        required=False,
        allow_null=True,
        help_text="queue_backlog: the oldest queued job's age; no_worker: how long without a live worker "
        "(minutes; empty: the default). Other events have none.",
    )

    class Meta:
        model = PlatformRoute
        fields = ["id", "workspace", "event", "channel", "threshold_minutes", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []  # the service says when a channel already hears an event
