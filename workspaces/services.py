from django.db import IntegrityError, transaction

from core.errors import ServiceError

from .models import Membership, Workspace


def workspace_ensure_personal(*, user):
    """The user's personal workspace, created on first use; safe under concurrent requests."""
    existing = Workspace.objects.filter(personal_for=user).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            workspace = Workspace.objects.create(name=f"{user.get_username()}'s workspace", personal_for=user)
            Membership.objects.create(workspace=workspace, user=user, role=Membership.Role.OWNER)
            return workspace
    except IntegrityError:
        return Workspace.objects.get(personal_for=user)


def workspaces_of(user):
    return Workspace.objects.filter(memberships__user=user)


def workspace_for_write(*, user, workspace_id=None):
    """The workspace a new row goes into: the one named, if the user belongs to it, else the personal one."""
    if workspace_id is None:
        memberships = Membership.objects.filter(user=user).select_related("workspace")
        first = memberships.order_by("joined_at", "id").first()
        return first.workspace if first else workspace_ensure_personal(user=user)
    workspace = workspaces_of(user).filter(id=workspace_id).first()
    if workspace is None:
        raise ServiceError("No such workspace.", code="invalid", fields={"workspace": ["No such workspace."]})
    return workspace
