from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.reverse import reverse

from jobs.apis import HealthApi
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
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar), no CDN.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/schema/swagger-ui/", RedirectView.as_view(pattern_name="swagger-ui", permanent=True)),
]


def json_error_for_api(code, message, status):
    """Django-level errors (unknown URL, crash) under /api/ answer in the API's error shape."""
    from django.http import JsonResponse
    from django.views import defaults

    def view(request, exception=None):
        if request.path.startswith("/api/"):
            return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)
        if status == 404:
            return defaults.page_not_found(request, exception)
        return defaults.server_error(request)

    return view


handler404 = json_error_for_api("not_found", "No such endpoint.", 404)
handler500 = json_error_for_api("server_error", "Something went wrong on our side; it has been logged.", 500)
