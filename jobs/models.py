from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.db import models


class PausedQueue(models.Model):
    """An operator paused this queue: its jobs wait, other queues keep running."""

    name = models.CharField(max_length=100, unique=True)
    paused_at = models.DateTimeField(auto_now_add=True)
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Attempt(models.Model):
    """One run of a job on behalf of a domain row: when, where, how it ended.

    Written once, when the attempt ends (jobs.attempts); an attempt cut short by a killed
    worker is written by the reconciler as `lost` when it resumes the row. Rows keep their
    attempts for ATTEMPTS_KEPT_DAYS days.
    """

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "succeeded"  # the row is done
        CONTINUED = "continued", "continued"  # the row's next step has a job of its own
        WAITING = "waiting", "waiting"  # the remote asked for a pause (429); no try used
        RETRYING = "retrying", "retrying"  # a transient error: the job tries again later
        FAILED = "failed", "failed"  # the row failed for good
        NOTHING_TO_DO = "nothing-to-do", "nothing to do"  # the job did not hold the row
        LOST = "lost", "lost"  # its worker died mid-job (found by the reconciler)

    content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    row = GenericForeignKey("content_type", "object_id")
    queue = models.CharField(max_length=100)
    job_id = models.CharField(max_length=64)
    number = models.PositiveIntegerField(default=1, help_text="The job's try: 1, then one more per retry.")
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["content_type", "object_id", "-started_at"], name="attempt_of_row"),
            models.Index(fields=["started_at"], name="attempt_started"),
        ]

    def __str__(self):
        return f"{self.job_id} try {self.number}: {self.outcome}"

    @property
    def duration(self):
        """Seconds from start to end."""
        return (self.ended_at - self.started_at).total_seconds()
