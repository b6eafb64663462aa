from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models

from core.fields import EncryptedJSONField
from workspaces.models import Workspace


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Rule(models.Model):
    """Watch part of a page: fetch it on a schedule, extract, compare, alert on a change."""

    class FetchMode(models.TextChoices):
        HTTP = "http", "HTTP"
        HEADLESS = "headless", "Headless Chromium"

    class Extractor(models.TextChoices):
        CSS = "css", "CSS selector"
        XPATH = "xpath", "XPath"
        JSONPATH = "jsonpath", "JSONPath"
        REGEX = "regex", "Regular expression"

    class Priority(models.TextChoices):
        NORMAL = "normal"
        # Scheduled runs of a high-priority rule go to the front of the queue, like manual tests.
        HIGH = "high"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000)
    fetch_mode = models.CharField(max_length=10, choices=FetchMode.choices, default=FetchMode.HTTP)
    extractor = models.CharField(max_length=10, choices=Extractor.choices, default=Extractor.CSS)
    expression = models.TextField(help_text="The selector, path or pattern that picks the watched part.")
    collapse_whitespace = models.BooleanField(
        default=True, help_text="Differences of white space and blank lines alone are no change."
    )
    ignore_patterns = models.JSONField(
        default=list, blank=True, help_text="Regular expressions removed from the text before comparing."
    )
    # Request headers may carry credentials (Authorization, cookies): stored encrypted,
    # and the API shows their names only.
    headers = EncryptedJSONField(default=dict, blank=True, editable=False)
    interval = models.PositiveIntegerField(default=3600, help_text="Seconds between two scheduled checks.")
    cron = models.CharField(max_length=100, blank=True, help_text="A cron expression in UTC; replaces the interval.")
    enabled = models.BooleanField(default=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    error_threshold = models.PositiveIntegerField(
        default=3, help_text="Failed runs in a row that raise one error alert."
    )
    channels = models.ManyToManyField(
        "Channel",
        blank=True,
        related_name="rules",
        help_text="Where this rule's alerts go (its workspace's channels); none chosen: every enabled channel.",
    )
    # Bumped when what is watched changes (URL, extractor, expression, normalisation): the
    # next run starts a new baseline instead of alerting on the difference of the edit.
    revision = models.PositiveIntegerField(default=1, editable=False)
    consecutive_errors = models.PositiveIntegerField(default=0)
    error_alerted = models.BooleanField(default=False, help_text="The current error streak was alerted.")
    last_error = models.TextField(blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    @property
    def domain(self):
        """The host the per-domain rate limit counts against."""
        return (urlsplit(self.url).hostname or "").lower()


class RuleRun(models.Model):
    """One check of a rule, by the schedule, a user's test, or a retry of a failed run."""

    Status = RunStatus
    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL_TEST = "manual_test"
        RETRY = "retry"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="rule_runs")
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    fetch_mode = models.CharField(max_length=10, choices=Rule.FetchMode.choices)
    debug = models.BooleanField(default=False, help_text="Keep what was fetched and extracted.")
    at_front = models.BooleanField(default=False, help_text="Queued ahead of the scheduled runs.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    changed = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    debug_output = models.JSONField(null=True, blank=True)
    snapshot = models.ForeignKey("Snapshot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job_id = models.CharField(max_length=64, blank=True)
    # Every job attempt on this row (jobs.attempts), newest first.
    attempt_log = GenericRelation("jobs.Attempt")
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self):
        return f"{self.rule} run #{self.pk}"


class Snapshot(models.Model):
    """The watched part of the page, stored once per distinct content."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="snapshots")
    revision = models.PositiveIntegerField(default=1, help_text="The rule's revision it was taken under.")
    fingerprint = models.CharField(max_length=64)
    text = models.TextField()
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fetched_at", "-id"]
        indexes = [models.Index(fields=["rule", "-id"], name="snapshot_latest")]

    def __str__(self):
        return f"{self.rule} @ {self.fetched_at:%Y-%m-%d %H:%M}"


class Alert(models.Model):
    """A detected change, or a rule that keeps failing; delivered to every channel."""

    class Kind(models.TextChoices):
        CHANGE = "change"
        ERROR = "error"
        # The first success after an error alert.
        RECOVERED = "recovered"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="alerts")
    run = models.ForeignKey(RuleRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=300)
    diff = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=200, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.title


class Channel(models.Model):
    """Where a workspace's alerts go: any apprise URL, or a webhook we sign."""

    class Kind(models.TextChoices):
        APPRISE = "apprise", "Apprise URL"
        WEBHOOK = "webhook", "Signed webhook"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # {"url": …} for apprise; {"url": …, "secret": …} for a signed webhook. Write-only.
    config = EncryptedJSONField(editable=False)
    service = models.CharField(max_length=100, blank=True, help_text="What the URL points at (json, slack, mailto…).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class AlertDelivery(models.Model):
    """One alert sent to one channel: its own job, retried on its own."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"
        # The same dedupe key went to this channel within the window: not sent again.
        DUPLICATE = "duplicate"

    ACTIVE_STATUSES = (Status.QUEUED, Status.SENDING)

    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alert_deliveries")
    # What to send when the delivery carries no alert: a channel test, or another app's
    # notification ({"title", "body", …}).
    message = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    # Every job attempt on this row (jobs.attempts), newest first.
    attempt_log = GenericRelation("jobs.Attempt")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "alert deliveries"

    def __str__(self):
        what = f"alert {self.alert_id}" if self.alert_id else (self.message or {}).get("kind", "message")
        return f"{what} → {self.channel}"


class DedupeClaim(models.Model):
    """The database decides who sends a dedupe key to a channel: one row per (channel,
    key), taken by an insert or by an update of an expired row, never by two racers."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    dedupe_key = models.CharField(max_length=200)
    until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "dedupe_key"], name="one_claim_per_channel_key")]

    def __str__(self):
        return f"{self.dedupe_key} → channel {self.channel_id} until {self.until:%H:%M:%S}"


class PlatformRoute(models.Model):
    """A workspace hears about a platform event on one of its channels. Row events (a
    publishing failed, a source disabled) are the workspace's own rows'; health events (a
    queue's backlog, no live worker) are the whole platform's, heard by every route to them."""

    class Event(models.TextChoices):
        PUBLISHING_FAILED = "publishing_failed", "A publishing failed"
        SOURCE_DISABLED = "source_disabled", "A source was disabled after failed fetches"
        QUEUE_BACKLOG = "queue_backlog", "A queue's oldest job waits longer than the threshold"
        NO_WORKER = "no_worker", "No live worker for longer than the threshold"

    # Health events: about the whole platform, and judged against the route's threshold.
    PLATFORM_WIDE = (Event.QUEUE_BACKLOG, Event.NO_WORKER)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="platform_routes")
    event = models.CharField(max_length=20, choices=Event.choices)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="platform_routes")
    threshold_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Health events only: how old the oldest queued job, or how long without a live worker.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event", "id"]
        constraints = [models.UniqueConstraint(fields=["channel", "event"], name="one_route_per_channel_event")]

    def __str__(self):
        return f"{self.get_event_display()} → {self.channel}"

    @property
    def platform_wide(self):
        return self.event in self.PLATFORM_WIDE
