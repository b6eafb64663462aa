from rest_framework import generics, serializers

from .models import Workspace
from .services import workspace_ensure_personal, workspaces_of


class WorkspaceScoped:
    """A view whose rows are limited to the requesting user's workspaces."""

    def user_workspaces(self):
        user = self.request.user
        workspaces = workspaces_of(user)
        if not workspaces.exists():
            workspace_ensure_personal(user=user)
        return workspaces


class WorkspaceSerializer(serializers.ModelSerializer):
    personal = serializers.SerializerMethodField()

    class Meta:
        model = Workspace
        fields = ["id", "name", "personal", "created_at"]

    def get_personal(self, workspace) -> bool:
        return workspace.personal_for_id is not None


class WorkspaceListApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = WorkspaceSerializer

    def get_queryset(self):
        return self.user_workspaces().order_by("id")
