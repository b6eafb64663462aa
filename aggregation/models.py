from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models

from core.fields import EncryptedJSONField
from workspaces.models import Workspace


class Source(models.Model):
    """Something a workspace follows: a Mastodon timeline, a Lemmy community, a PeerTube
    instance or channel, or an RSS/Atom feed."""

    class Platform(models.TextChoices):
        MASTODON = "mastodon"
        LEMMY = "lemmy"
        PEERTUBE = "peertube"
        FEED = "feed", "RSS/Atom feed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="sources")
    name = models.CharField(max_length=200)
    platform = models.CharField(max_length=10, choices=Platform.choices)
    url = models.URLField(max_length=1000, help_text="The instance (https://mastodon.social) or the feed's URL.")
    target = models.CharField(
        max_length=200,
        blank=True,
        help_text="Mastodon: public, local, tag:NAME or account:ID. Lemmy: the community name. "
        "PeerTube: instance or channel:HANDLE. Feeds: empty.",
    )
    enabled = models.BooleanField(default=True)
    poll_interval = models.PositiveIntegerField(default=900, help_text="Seconds between two scheduled fetches.")
    poll_cron = models.CharField(
        max_length=100, blank=True, help_text='A cron expression in UTC ("*/15 * * * *"); replaces the interval.'
    )
    cursor = models.JSONField(default=dict, blank=True, help_text="Where the next fetch starts (newest id, ETag…).")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    @property
    def host(self):
        """The remote instance (name and port): where a user's account for it is found."""
        return urlsplit(self.url).netloc.rpartition("@")[2].lower()

    @property
    def rate_key(self):
        """The key of the per-host rate limit: the host name alone, so that neither a port
        nor userinfo (a@host, b@host) gives a host a second allowance."""
        return (urlsplit(self.url).hostname or "").lower()


class RunStatus(models.TextChoices):
    """The life of a row that one job at a time carries out."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Fetch(models.Model):
    """One fetch of a source: asked for by a user (maybe delayed) or by the schedule."""

    Status = RunStatus

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        SCHEDULE = "schedule"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="fetches")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="fetches")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    run_after = models.DateTimeField(help_text="Not before this time (a delayed fetch).")
    attempts = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    new_posts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    # Every job attempt on this row (jobs.attempts), newest first.
    attempt_log = GenericRelation("jobs.Attempt")
    # Matching the new posts against subscriptions is a job of its own (notifications queue).
    notify_job_id = models.CharField(max_length=64, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.source} fetch #{self.pk}"

    def new_posts_query(self):
        """The posts this fetch stored first (an upsert keeps a post's first fetched_at)."""
        return Post.objects.filter(source_id=self.source_id, fetched_at__gte=self.started_at)


class Post(models.Model):
    """A post, stored once per source however often it is fetched."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="posts")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="posts")
    remote_id = models.CharField(max_length=300)
    url = models.URLField(max_length=1000, blank=True)
    author_name = models.CharField(max_length=300, blank=True)
    author_url = models.URLField(max_length=1000, blank=True)
    title = models.CharField(max_length=500, blank=True)
    content_html = models.TextField(blank=True, help_text="Sanitized.")
    content_text = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    media = models.JSONField(default=list, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["source", "remote_id"], name="post_once_per_source")]

    def __str__(self):
        return self.title or self.content_text[:60] or self.remote_id


class Subscription(models.Model):
    """A user wants to hear about new posts with a keyword, or by an account."""

    class Kind(models.TextChoices):
        KEYWORD = "keyword"
        ACCOUNT = "account"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="subscriptions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=200, help_text="A word or phrase, or an author's name.")
    channel = models.ForeignKey(
        "alerts.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="subscriptions",
        help_text="Also push each matching post to this alert channel (Slack, email, a webhook…).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace", "kind", "value"], name="subscription_once_per_user")
        ]

    def __str__(self):
        return f"{self.kind}: {self.value}"

    def matches(self, post):
        needle = self.value.casefold()
        if self.kind == self.Kind.KEYWORD:
            return needle in f"{post.title} {post.content_text}".casefold()
        return needle == post.author_name.casefold() or needle in post.author_url.casefold()


class Notification(models.Model):
    """A new post matched one of the user's subscriptions."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="notifications")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="notifications")
    subscription = models.ForeignKey(Subscription, null=True, on_delete=models.SET_NULL, related_name="notifications")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "post"], name="notify_once_per_post")]

    def __str__(self):
        return f"{self.user} ← {self.post}"


class RemoteAccount(models.Model):
    """A user's access token on a remote instance, used to act there in their name."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="remote_accounts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="remote_accounts")
    host = models.CharField(max_length=255, help_text="The instance, e.g. mastodon.social.")
    instance_url = models.URLField(
        max_length=300, blank=True, help_text="Where actions in the user's name go: the instance the token is for."
    )
    credentials = EncryptedJSONField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host"]
        constraints = [models.UniqueConstraint(fields=["user", "host"], name="one_account_per_instance")]

    def __str__(self):
        return f"{self.user} on {self.host}"


class UserAction(models.Model):
    """Like, boost or reply to a post on its platform, in the user's name."""

    class Action(models.TextChoices):
        LIKE = "like"
        BOOST = "boost"
        REPLY = "reply"

    Status = RunStatus
    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="user_actions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="user_actions")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="user_actions")
    action = models.CharField(max_length=10, choices=Action.choices)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    remote_id = models.CharField(max_length=100, blank=True, help_text="The remote status it made, for replies.")
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the request left for the instance (a reply is never sent twice)."
    )
    last_error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    # Every job attempt on this row (jobs.attempts), newest first.
    attempt_log = GenericRelation("jobs.Attempt")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action} {self.post_id} by {self.user}"
