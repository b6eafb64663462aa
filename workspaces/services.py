from contextlib import contextmanager

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


@contextmanager
def within_quota(workspace, rows, *, limit, what):
    """Hold the workspace while a new row is added, refused once `rows` (a queryset of the
    workspace's rows) reaches `limit`: two racing creates cannot both take the last place."""
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        if rows.count() >= limit:
            raise ServiceError(
                f"This workspace has reached its limit of {limit} {what}; delete some first.",
                code="quota_exceeded",
                fields={"workspace": [f"At most {limit} {what} per workspace."]},
            )
        yield
