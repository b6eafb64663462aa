from django.contrib import admin

from .models import Membership, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "personal_for", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        """A staff user who is not a superuser sees only the workspaces they belong to."""
        workspaces = super().get_queryset(request)
        return workspaces if request.user.is_superuser else workspaces.filter(memberships__user=request.user)
