"""Admin pieces every app uses: read-only record pages and per-row enqueue actions."""

import redis
from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.db import models
from django.utils.html import format_html
from rest_framework import serializers
from rq.job import Job

from jobs import attempts
from jobs.admin import dashboard_job_url
from jobs.connection import get_redis
from jobs.models import Attempt
from workspaces.services import workspaces_of

from .errors import QueueUnavailable, ServiceError
from .serializers import PublicUrlField


class GuardedUrlForm(forms.ModelForm):
    """An admin form whose `url` meets the same guard as the API's (no private addresses)."""

    def clean_url(self):
        try:
            return PublicUrlField().run_validation(self.cleaned_data["url"])
        except serializers.ValidationError as exc:
            raise forms.ValidationError(exc.detail) from None


class WorkspaceAdmin(admin.ModelAdmin):
    """A staff user who is not a superuser sees, and picks, only their workspaces' rows.
    `workspace_path` leads from the model to its workspace."""

    workspace_path = "workspace"

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        return rows.filter(**{f"{self.workspace_path}__in": workspaces_of(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "workspace" and not request.user.is_superuser:
            kwargs["queryset"] = workspaces_of(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# Django 6 will assume https:// for a URL typed without a scheme; so do we, already.
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


class RecordAdmin(WorkspaceAdmin):
    """Rows the system writes (fetches, runs, posts, deliveries…): shown, never edited."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # A view page, without Save buttons; the admin's actions (retry, resend) still apply.
        return False


class ServiceAdmin(WorkspaceAdmin):
    """Admin saves go through the app's services, as the API's do: what a service does on
    a write (reschedule, start a new baseline, forget a failure streak) happens here too.
    Subclasses name them: `create(request, fields)` and `update(row, changes)` return the row."""

    def save_model(self, request, obj, form, change):
        options = self.model._meta
        model_fields = {model_field.name for model_field in (*options.fields, *options.many_to_many)}
        names = form.changed_data if change else form.cleaned_data
        values = {name: form.cleaned_data[name] for name in names if name in model_fields}
        if change:
            saved = self.update(request, self.model.objects.get(pk=obj.pk), values)
        else:
            saved = self.create(request, values)
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        # The service wrote the many-to-many fields too, checked as the API's are.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def create(self, request, fields):
        raise NotImplementedError

    def update(self, request, row, changes):
        raise NotImplementedError


def enqueue_each(model_admin, request, queryset, enqueue_one, done):
    """An admin action's loop: `enqueue_one(row)` for each selected row. A refused row is
    reported and skipped; Redis being down stops the loop and says so once."""
    queued = 0
    for row in queryset:
        try:
            enqueue_one(row)
            queued += 1
        except ServiceError as exc:
            model_admin.message_user(request, f"{row}: {exc.message}", messages.WARNING)
        except QueueUnavailable:
            model_admin.message_user(request, "The job queue is unavailable; nothing more was queued.", messages.ERROR)
            break
    if queued:
        model_admin.message_user(request, done.format(count=queued), messages.SUCCESS)


class AttemptInline(GenericTabularInline):
    """A row's newest job attempts, read-only, newest first. A job that Redis still has
    links to its page in the django-rq dashboard (traceback, requeue)."""

    model = Attempt
    fields = ["number", "outcome", "started_at", "ended_at", "seconds", "job", "queue", "worker_short", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = f"job attempts (newest {attempts.SHOWN})"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._live_jobs = None  # an inline lives for one request: the jobs Redis has, once

    def get_queryset(self, request):
        return attempts.newest()

    def has_view_permission(self, request, obj=None):
        return True  # part of the row's page, which its admin guards

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="seconds")
    def seconds(self, attempt):
        return f"{attempt.duration:.3f}"

    @admin.display(description="job")
    def job(self, attempt):
        # Ids are 32 hex digits: the first 12 tell them apart, the title holds the whole.
        if attempt.job_id not in self.live_jobs(attempt):
            return format_html('<span title="{}">{}</span>', attempt.job_id, attempt.job_id[:12])
        url = dashboard_job_url(attempt.queue, attempt.job_id)
        return format_html('<a href="{}" title="{}">{}</a>', url, attempt.job_id, attempt.job_id[:12])

    @admin.display(description="worker")
    def worker_short(self, attempt):
        return format_html('<span title="{}">{}</span>', attempt.worker, attempt.worker[:12])

    def live_jobs(self, attempt):
        """The jobs of the row's shown attempts that Redis still has, in one round trip."""
        if self._live_jobs is None:
            shown = self.get_queryset(None).filter(content_type_id=attempt.content_type_id, object_id=attempt.object_id)
            self._live_jobs = jobs_in_redis({job_id for job_id in shown.values_list("job_id", flat=True)})
        return self._live_jobs


def jobs_in_redis(job_ids):
    """Those of `job_ids` whose job Redis still has (none when Redis is down)."""
    job_ids = sorted(job_ids)
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(Job.key_for(job_id))
            return {job_id for job_id, found in zip(job_ids, pipe.execute()) if found}
    except redis.RedisError:
        return set()
