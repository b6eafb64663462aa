"""The `attempts` list every row that jobs carry out shows in the API (jobs.attempts)."""

from django.db.models import Prefetch
from rest_framework import serializers

from . import attempts
from .models import Attempt


class NewestAttempts(serializers.ListSerializer):
    """A row's newest attempts: the prefetched ones (`with_attempts`), else one query."""

    def to_representation(self, data):
        return super().to_representation(data.all()[: attempts.SHOWN])


class AttemptSerializer(serializers.ModelSerializer):
    duration = serializers.FloatField(read_only=True, help_text="Seconds from start to end.")

    class Meta:
        model = Attempt
        fields = ["number", "outcome", "started_at", "ended_at", "duration", "queue", "job_id", "error"]
        read_only_fields = fields
        list_serializer_class = NewestAttempts


def attempts_field():
    """The `attempts` field of a row's serializer: its newest attempts, newest first."""
    return AttemptSerializer(
        source="attempt_log",
        many=True,
        read_only=True,
        help_text=f"The row's newest {attempts.SHOWN} job attempts, newest first (kept ATTEMPTS_KEPT_DAYS days).",
    )


def attempt_count_field(help_text="Tries of the row's current run, retries included."):
    return serializers.IntegerField(source="attempts", read_only=True, help_text=help_text)


def with_attempts(rows, path="attempt_log"):
    """`rows` (a queryset) with their newest attempts prefetched in one query."""
    return rows.prefetch_related(Prefetch(path, queryset=attempts.newest()))
