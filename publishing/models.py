from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models

from core.fields import EncryptedJSONField
from workspaces.models import Workspace


class Project(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    # Where `eas` runs (publishing/checkout.py): a git repository at a ref, or a directory.
    repository_url = models.CharField(max_length=500, blank=True, help_text="An https git URL, fetched per use.")
    repository_ref = models.CharField(
        max_length=200, blank=True, help_text="Branch, tag or commit; empty: the repository's default branch."
    )
    directory = models.CharField(max_length=500, blank=True, help_text="A directory under EAS_PROJECTS_ROOT.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="project_name_unique_in_workspace"),
            models.CheckConstraint(
                condition=models.Q(repository_url="") | models.Q(directory=""), name="project_one_source"
            ),
        ]

    def __str__(self):
        return self.name


class Publishing(models.Model):
    """One request to build an app with EAS and submit it to the stores."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        BUILDING = "building"
        SUBMITTING = "submitting"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Platform(models.TextChoices):
        IOS = "ios"
        ANDROID = "android"
        ALL = "all"

    ACTIVE_STATUSES = (Status.QUEUED, Status.BUILDING, Status.SUBMITTING)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="publishings")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="publishings")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    platform = models.CharField(max_length=10, choices=Platform.choices)
    profile = models.CharField(max_length=100, default="production")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Build starts tried, retries included.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="0 to 100.")
    progress_message = models.CharField(max_length=200, blank=True)
    eas_build_id = models.CharField(max_length=64, blank=True)
    eas_submission_id = models.CharField(max_length=64, blank=True)
    builds = models.JSONField(default=list, blank=True, help_text="Every EAS build of this request, as last seen.")
    artifact_url = models.URLField(max_length=1000, blank=True)
    last_error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True, help_text="The one job allowed to advance this row.")
    # Every job attempt on this row (jobs.attempts), newest first.
    attempt_log = GenericRelation("jobs.Attempt")
    credentials = EncryptedJSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "updated_at"], name="publishing_status_updated")]

    def __str__(self):
        return f"{self.project} {self.platform} #{self.pk}"

    @property
    def is_finished(self):
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
