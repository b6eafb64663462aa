from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.reverse import reverse

from jobs.apis import HealthApi
from jobs.prometheus import metrics_view
from workspaces.apis import WorkspaceListApi


@extend_schema(exclude=True)
@api_view(["GET"])
def api_root(request):
    names = [
        "workspace-list",
        "project-list",
        "publishing-list",
        "publishing-initiate",
        "source-list",
        "post-list",
        "rule-list",
        "alert-list",
        "channel-list",
        "queue-list",
    ]
    return Response({name: reverse(name, request=request) for name in names})


api_v1 = [
    path("", api_root, name="api-root"),
    path("workspaces/", WorkspaceListApi.as_view(), name="workspace-list"),
    path("", include("publishing.urls")),
    path("", include("aggregation.urls")),
    path("", include("alerts.urls")),
    path("", include("jobs.urls")),
]

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    # The job platform's own admin pages (queue charts, failed jobs), beside its models' pages.
    path("admin/jobs/", include("jobs.admin_urls")),
    # Prometheus, with a bearer token (METRICS_TOKEN); unset, a 404.
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar), no CDN.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/schema/swagger-ui/", RedirectView.as_view(pattern_name="swagger-ui", permanent=True)),
]


def json_error_for_api(code, message, status, page):
    """Django-level errors (a bad request, an unknown URL, a crash) answer in the API's error
    shape under /api/, and with Django's own `page` elsewhere (the admin)."""

    def view(request, exception=None):
        if request.path.startswith("/api/"):
            return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)
        return page(request, exception)

    return view


handler400 = json_error_for_api(
    "bad_request", "The request could not be read (too many fields, or a bad header).", 400, defaults.bad_request
)
handler403 = json_error_for_api("forbidden", "You may not do this.", 403, defaults.permission_denied)
handler404 = json_error_for_api("not_found", "No such endpoint.", 404, defaults.page_not_found)
handler500 = json_error_for_api(
    "server_error",
    "Something went wrong on our side; it has been logged.",
    500,
    lambda request, exception=None: defaults.server_error(request),
)
