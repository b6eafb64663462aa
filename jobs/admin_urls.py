"""The platform's admin pages (jobs/operator_views.py), under /admin/jobs/ beside the models'
pages; admin.site.admin_view makes them staff only, with the admin's login and CSRF."""

from django.contrib import admin
from django.urls import path

from . import operator_views

app_name = "jobs_admin"

urlpatterns = [
    path("failed/", admin.site.admin_view(operator_views.failed_jobs), name="failed"),
    path("queues/<str:name>/", admin.site.admin_view(operator_views.queue_page), name="queue"),
    path("queues/<str:name>/pause", admin.site.admin_view(operator_views.queue_pause), name="pause"),
    path("queues/<str:name>/resume", admin.site.admin_view(operator_views.queue_resume), name="resume"),
]
