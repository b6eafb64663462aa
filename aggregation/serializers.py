from rest_framework import serializers

from core.serializers import PublicUrlField, StrictIntegerField, StrictSerializer
from jobs import scheduling
from jobs.serializers import attempt_count_field, attempts_field

from .models import Fetch, Notification, Post, RemoteAccount, Source, Subscription, UserAction

TARGET_HELP = Source._meta.get_field("target").help_text
# Seconds: no source is polled more often, by interval or by cron.
MIN_POLL_INTERVAL = 60


class SourceSerializer(StrictSerializer, serializers.ModelSerializer):
    workspace = serializers.IntegerField(source="workspace_id", required=False)
    url = PublicUrlField(max_length=1000)
    host = serializers.CharField(read_only=True)
    poll_interval = StrictIntegerField(min_value=MIN_POLL_INTERVAL, max_value=7 * 86400, required=False)

    class Meta:
        model = Source
        fields = [
            "id",
            "workspace",
            "name",
            "platform",
            "url",
            "target",
            "enabled",
            "poll_interval",
            "poll_cron",
            "host",
            "consecutive_failures",
            "last_error",
            "last_fetched_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "consecutive_failures", "last_error", "last_fetched_at", "created_at", "updated_at"]

    def validate(self, data):
        platform = data.get("platform", getattr(self.instance, "platform", None))
        target = data.get("target", getattr(self.instance, "target", ""))
        problem = target_problem(platform, target)
        if problem:
            raise serializers.ValidationError({"target": [problem]})
        cron = data.get("poll_cron")
        problem = cron and scheduling.cron_problem(cron, MIN_POLL_INTERVAL)
        if problem:
            raise serializers.ValidationError({"poll_cron": [problem]})
        return data


def target_problem(platform, target):
    kind, _, value = (target or "").partition(":")
    if platform == "mastodon" and not (target in ("", "public", "local") or (kind in ("tag", "account") and value)):
        return "Mastodon targets: public, local, tag:NAME or account:ID."
    if platform == "lemmy" and not target:
        return "Lemmy sources need the community name."
    if platform == "peertube" and not (target in ("", "instance") or (kind == "channel" and value)):
        return "PeerTube targets: instance or channel:HANDLE."
    if platform == "feed" and target:
        return "Feeds take no target."
    return None


class FetchRequestSerializer(StrictSerializer):
    delay_seconds = StrictIntegerField(min_value=0, max_value=7 * 86400, required=False, default=0)


class BulkFetchSerializer(StrictSerializer):
    ids = serializers.ListField(child=StrictIntegerField(min_value=1), min_length=1, max_length=500)


class FetchSerializer(serializers.ModelSerializer):
    attempt_count = attempt_count_field()
    attempts = attempts_field()

    class Meta:
        model = Fetch
        fields = [
            "id",
            "source",
            "trigger",
            "status",
            "run_after",
            "attempt_count",
            "pages",
            "new_posts",
            "last_error",
            "created_at",
            "started_at",
            "finished_at",
            "attempts",
        ]


class PostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Post
        fields = [
            "id",
            "source",
            "remote_id",
            "url",
            "author_name",
            "author_url",
            "title",
            "content_html",
            "content_text",
            "published_at",
            "media",
            "counts",
            "fetched_at",
        ]


class PostQuerySerializer(serializers.Serializer):
    source = serializers.IntegerField(min_value=1, required=False)
    q = serializers.CharField(max_length=200, required=False)
    since = serializers.DateTimeField(required=False)


class SubscriptionSerializer(StrictSerializer, serializers.ModelSerializer):
    workspace = serializers.IntegerField(source="workspace_id", required=False)
    channel = StrictIntegerField(source="channel_id", min_value=1, required=False, allow_null=True)

    class Meta:
        model = Subscription
        fields = ["id", "workspace", "kind", "value", "channel", "created_at"]
        read_only_fields = ["id", "created_at"]


class NotificationSerializer(serializers.ModelSerializer):
    post = PostSerializer(read_only=True)
    subscription = serializers.CharField(source="subscription.__str__", default=None, read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "post", "subscription", "created_at", "read_at"]


class MarkReadSerializer(StrictSerializer):
    ids = serializers.ListField(child=StrictIntegerField(min_value=1), required=False, max_length=1000)


class NotificationQuerySerializer(serializers.Serializer):
    # Not a BooleanField: in a query string DRF reads a missing boolean as false.
    unread = serializers.ChoiceField(choices=["true", "false"], required=False)


class RemoteAccountSerializer(StrictSerializer, serializers.ModelSerializer):
    instance = PublicUrlField(write_only=True, max_length=500)
    access_token = serializers.CharField(write_only=True, max_length=500)
    workspace = serializers.IntegerField(source="workspace_id", required=False)

    class Meta:
        model = RemoteAccount
        fields = ["id", "workspace", "host", "instance", "access_token", "created_at"]
        read_only_fields = ["id", "host", "created_at"]


class ActionRequestSerializer(StrictSerializer):
    action = serializers.ChoiceField(choices=UserAction.Action.choices)
    text = serializers.CharField(max_length=5000, required=False, default="")

    def validate(self, data):
        if data["action"] == UserAction.Action.REPLY and not data["text"].strip():
            raise serializers.ValidationError({"text": ["A reply needs text."]})
        if data["action"] != UserAction.Action.REPLY and data["text"]:
            raise serializers.ValidationError({"text": ["Only replies take text."]})
        return data


class UserActionSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="action-detail")

    attempt_count = attempt_count_field()
    attempts = attempts_field()

    class Meta:
        model = UserAction
        fields = [
            "id",
            "url",
            "post",
            "action",
            "text",
            "status",
            "attempt_count",
            "remote_id",
            "last_error",
            "created_at",
            "finished_at",
            "attempts",
        ]
