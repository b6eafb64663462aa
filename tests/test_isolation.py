"""Workspace isolation, generated from the URL configuration: every API endpoint that
takes an id answers 404 to a member of another workspace, whatever the method, and
nothing changes. An endpoint added later is tried too, or fails this test until it is."""

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIRequestFactory, force_authenticate

from aggregation.models import Fetch, Notification, Post, RemoteAccount, Source, Subscription, UserAction
from alerts.models import Alert, AlertDelivery, Channel, PlatformRoute, Rule, RuleRun, Snapshot
from jobs.queueing import get_queue
from publishing.models import Project, Publishing
from workspaces.services import workspace_ensure_personal

APPS = ("publishing", "aggregation", "alerts", "workspaces")
BODIES = {"post": {}, "patch": {"name": "taken over", "enabled": False}, "put": {"name": "taken over"}, "delete": None}


def api_patterns(resolver=None, prefix=""):
    """(route, pattern) of every URL under /api/v1/ whose route takes a primary key."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from api_patterns(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/v1/") and "<int:pk>" in route:
            yield route, entry


def everything_of(user):
    """One row of every kind in the user's workspace: what another member must not reach."""
    workspace = workspace_ensure_personal(user=user)
    project = Project.objects.create(workspace=workspace, name="secret app")
    source = Source.objects.create(workspace=workspace, name="feed", platform="feed", url="https://example.com/f")
    post = Post.objects.create(workspace=workspace, source=source, remote_id="1", title="hello")
    rule = Rule.objects.create(workspace=workspace, name="rule", url="https://example.com/", expression="h1")
    run = RuleRun.objects.create(workspace=workspace, rule=rule, trigger="manual_test", fetch_mode="http")
    alert = Alert.objects.create(workspace=workspace, rule=rule, run=run, kind="change", title="t", dedupe_key="k")
    channel = Channel.objects.create(workspace=workspace, name="c", kind="apprise", config={"url": "json://x/"})
    rows = [
        project,
        Publishing.objects.create(workspace=workspace, project=project, requested_by=user, platform="ios"),
        source,
        Fetch.objects.create(workspace=workspace, source=source, run_after=timezone.now()),
        post,
        Subscription.objects.create(workspace=workspace, user=user, kind="keyword", value="x"),
        Notification.objects.create(workspace=workspace, user=user, post=post),
        RemoteAccount.objects.create(workspace=workspace, user=user, host="example.com", credentials={"t": "x"}),
        UserAction.objects.create(workspace=workspace, user=user, post=post, action="like"),
        rule,
        run,
        Snapshot.objects.create(rule=rule, fingerprint="f", text="t"),
        alert,
        channel,
        AlertDelivery.objects.create(workspace=workspace, channel=channel, alert=alert),
        PlatformRoute.objects.create(workspace=workspace, channel=channel, event="publishing_failed"),
    ]
    return {type(row): row for row in rows}


def state():
    """Every row of the apps, and every queue's length: what must not change."""
    rows = {model._meta.label: list(model.objects.order_by("pk").values()) for model in models_of_apps()}
    queues = {name: get_queue(name).count for name in ("publishing-builds", "rules-run", "alerts-dispatch")}
    return rows, queues


def models_of_apps():
    return [model for name in APPS for model in apps.get_app_config(name).get_models()]


def model_of(route, user):
    """The model an endpoint's id points into, asked of the view itself; a nested route
    (rules/<id>/runs/) points where its parent route (rules/<id>) does."""
    parent = route[: route.index("<int:pk>") + len("<int:pk>")]
    view_class = dict(api_patterns())[parent].callback.view_class
    view = view_class()
    request = APIRequestFactory().get("/")
    force_authenticate(request, user=user)
    view.request = view.initialize_request(request)
    view.kwargs = {"pk": 0}
    view.format_kwarg = None
    return view.get_queryset().model


def methods_of(pattern):
    view_class = pattern.callback.view_class
    return [method for method in ("get", "post", "patch", "put", "delete") if hasattr(view_class, method)]


@pytest.fixture
def intruder_and_rows(make_user, api, other_api):
    rows = everything_of(api.user)
    workspace_ensure_personal(user=other_api.user)
    return other_api, rows


def test_every_endpoint_with_an_id_is_found():
    routes = [route for route, _ in api_patterns()]
    assert len(routes) >= 15 and "api/v1/rules/<int:pk>" in routes and "api/v1/deliveries/<int:pk>" in routes


@pytest.mark.parametrize("route", [route for route, _ in api_patterns()])
def test_another_workspaces_row_is_a_404_and_nothing_changes(route, intruder_and_rows):
    intruder, rows = intruder_and_rows
    pattern = dict(api_patterns())[route]
    model = model_of(route, intruder.user)
    assert model in rows, f"{route}: no row of {model.__name__} to try; add one to everything_of()"
    url = "/" + route.replace("<int:pk>", str(rows[model].pk))
    before = state()

    for method in methods_of(pattern):
        body = BODIES.get(method)
        response = (
            intruder.client.request(method.upper(), url, json=body)
            if body is not None
            else getattr(intruder.client, method)(url)
        )
        assert response.status_code == 404, f"{method.upper()} {url}: {response.status_code} {response.text[:300]}"
        assert response.json()["error"]["code"] == "not_found"

    assert state() == before


@pytest.mark.parametrize(
    "path, body_of",
    [
        (
            "/api/v1/publishing/initiate",
            lambda rows: {"project": rows[Project].pk, "platform": "ios", "credentials": {"expo_token": "t"}},
        ),
        ("/api/v1/sources/fetch", lambda rows: {"ids": [rows[Source].pk]}),
        ("/api/v1/platform-routes/", lambda rows: {"event": "no_worker", "channel": rows[Channel].pk}),
        ("/api/v1/notifications/read", lambda rows: {"ids": [rows[Notification].pk]}),
        ("/api/v1/subscriptions/", lambda rows: {"kind": "keyword", "value": "y", "channel": rows[Channel].pk}),
        (
            "/api/v1/rules/",
            lambda rows: {
                "name": "r",
                "url": "http://127.0.0.1:9/",
                "expression": "h1",
                "workspace": rows[Rule].workspace_id,
            },
        ),
        (
            "/api/v1/rules/",
            lambda rows: {
                "name": "r",
                "url": "http://127.0.0.1:9/",
                "expression": "h1",
                "channels": [rows[Channel].pk],
            },
        ),
    ],
)
def test_ids_in_a_body_reach_no_other_workspace(path, body_of, intruder_and_rows):
    intruder, rows = intruder_and_rows
    before = state()

    response = intruder.post(path, body_of(rows))

    assert response.status_code in (200, 400, 404), response.text
    assert state() == before
