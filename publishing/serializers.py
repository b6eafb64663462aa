from rest_framework import serializers

from core.serializers import StrictSerializer
from jobs.serializers import attempt_count_field, attempts_field

from . import checkout
from .models import Project, Publishing


def checked(check, value):
    """`value` if `check(value)` passes; its SourceRefused as the field's 400 otherwise."""
    try:
        check(value)
    except checkout.SourceRefused as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value


class ProjectSerializer(StrictSerializer, serializers.ModelSerializer):
    """A project and where `eas` runs for it: a repository_url (and repository_ref), or a
    directory under EAS_PROJECTS_ROOT."""

    workspace = serializers.IntegerField(source="workspace_id", required=False)

    class Meta:
        model = Project
        fields = ["id", "name", "workspace", "repository_url", "repository_ref", "directory", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_repository_url(self, value):
        return checked(checkout.check_repository_address, value) if value else value

    def validate_repository_ref(self, value):
        return checked(checkout.check_ref, value)

    def validate_directory(self, value):
        return checked(checkout.directory_under_root, value) if value else value

    def validate(self, data):
        if data.get("repository_url") and data.get("directory"):
            raise serializers.ValidationError({"directory": ["Give a repository_url or a directory, not both."]})
        if data.get("repository_ref") and not data.get("repository_url"):
            raise serializers.ValidationError({"repository_ref": ["A ref needs a repository_url."]})
        if self.instance is None and not (data.get("repository_url") or data.get("directory")):
            problem = "A project needs its source: a repository_url, or a directory under EAS_PROJECTS_ROOT."
            raise serializers.ValidationError({"repository_url": [problem], "directory": [problem]})
        return data


class CredentialsSerializer(serializers.Serializer):
    expo_token = serializers.CharField(max_length=500, trim_whitespace=True)
    asc_api_key = serializers.CharField(max_length=10000, required=False, help_text="App Store Connect .p8 key")
    asc_key_id = serializers.CharField(max_length=100, required=False)
    asc_issuer_id = serializers.CharField(max_length=100, required=False)

    def validate(self, data):
        asc = [name for name in ("asc_api_key", "asc_key_id", "asc_issuer_id") if data.get(name)]
        if asc and len(asc) != 3:
            raise serializers.ValidationError("asc_api_key, asc_key_id and asc_issuer_id go together.")
        return data


class InitiateSerializer(StrictSerializer):
    project = serializers.IntegerField(min_value=1)
    platform = serializers.ChoiceField(choices=Publishing.Platform.choices)
    profile = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", default="production")
    credentials = CredentialsSerializer(write_only=True)


class PublishingSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="publishing-detail")
    project = serializers.IntegerField(source="project_id")

    attempt_count = attempt_count_field("Build starts tried, retries included.")
    attempts = attempts_field()

    class Meta:
        model = Publishing
        fields = [
            "id",
            "url",
            "project",
            "platform",
            "profile",
            "status",
            "attempt_count",
            "progress",
            "progress_message",
            "eas_build_id",
            "eas_submission_id",
            "builds",
            "artifact_url",
            "last_error",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
            "attempts",
        ]
        read_only_fields = fields


class PublishingListQuerySerializer(serializers.Serializer):
    project = serializers.IntegerField(min_value=1, required=False)
    status = serializers.ChoiceField(choices=Publishing.Status.choices, required=False)
