from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import EnqueueThrottle
from jobs.serializers import with_attempts
from workspaces.apis import WorkspaceScoped

from . import services
from .models import Project, Publishing
from .serializers import (
    InitiateSerializer,
    ProjectSerializer,
    PublishingListQuerySerializer,
    PublishingSerializer,
)


class ProjectListCreateApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return Project.objects.filter(workspace__in=self.user_workspaces())

    def post(self, request):
        data = ProjectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = {name: data.validated_data.get(name, "") for name in ("repository_url", "repository_ref", "directory")}
        project = services.project_create(
            user=request.user,
            name=data.validated_data["name"],
            workspace_id=data.validated_data.get("workspace_id"),
            **source,
        )
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class PublishingInitiateApi(APIView):
    throttle_classes = [EnqueueThrottle]
    throttle_scope = "publishing"

    @extend_schema(
        request=InitiateSerializer,
        responses={
            202: inline_serializer(
                "PublishingAccepted",
                {
                    "id": serializers.IntegerField(),
                    "status": serializers.CharField(),
                    "url": serializers.URLField(),
                },
            )
        },
    )
    def post(self, request):
        data = InitiateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        publishing = services.publishing_initiate(
            user=request.user,
            project_id=data.validated_data["project"],
            platform=data.validated_data["platform"],
            profile=data.validated_data["profile"],
            credentials=data.validated_data["credentials"],
        )
        url = request.build_absolute_uri(reverse("publishing-detail", args=[publishing.pk]))
        body = {"id": publishing.pk, "status": publishing.status, "url": url}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class PublishingListApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = PublishingSerializer

    def get_queryset(self):
        filters = PublishingListQuerySerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        rows = with_attempts(Publishing.objects.filter(workspace__in=self.user_workspaces()))
        if "project" in filters.validated_data:
            rows = rows.filter(project_id=filters.validated_data["project"])
        if "status" in filters.validated_data:
            rows = rows.filter(status=filters.validated_data["status"])
        return rows


class PublishingDetailApi(WorkspaceScoped, generics.RetrieveAPIView):
    serializer_class = PublishingSerializer

    def get_queryset(self):
        return with_attempts(Publishing.objects.filter(workspace__in=self.user_workspaces()))
