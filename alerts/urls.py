from django.urls import path

from . import apis

urlpatterns = [
    path("rules/", apis.RuleListCreateApi.as_view(), name="rule-list"),
    path("rules/<int:pk>", apis.RuleDetailApi.as_view(), name="rule-detail"),
    path("rules/<int:pk>/run", apis.RuleRunApi.as_view(), name="rule-run"),
    path("rules/<int:pk>/runs/", apis.RuleRunListApi.as_view(), name="rule-runs"),
    path("rules/<int:pk>/snapshots/", apis.RuleSnapshotListApi.as_view(), name="rule-snapshots"),
    path("runs/<int:pk>", apis.RunDetailApi.as_view(), name="run-detail"),
    path("alerts/", apis.AlertListApi.as_view(), name="alert-list"),
    path("alerts/<int:pk>", apis.AlertDetailApi.as_view(), name="alert-detail"),
    path("channels/", apis.ChannelListCreateApi.as_view(), name="channel-list"),
    path("channels/<int:pk>", apis.ChannelDetailApi.as_view(), name="channel-detail"),
    path("channels/<int:pk>/test", apis.ChannelTestApi.as_view(), name="channel-test"),
    path("deliveries/<int:pk>", apis.DeliveryDetailApi.as_view(), name="delivery-detail"),
    path("platform-routes/", apis.PlatformRouteListCreateApi.as_view(), name="platform-route-list"),
    path("platform-routes/<int:pk>", apis.PlatformRouteDetailApi.as_view(), name="platform-route-detail"),
]
