from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from core.serializers import StrictSerializer
from core.throttling import EnqueueThrottle
from jobs.serializers import with_attempts
from workspaces.apis import WorkspaceScoped

from . import services
from .models import Alert, AlertDelivery, Channel, PlatformRoute, Rule, RuleRun, Snapshot
from .serializers import (
    AlertQuerySerializer,
    AlertSerializer,
    ChannelSerializer,
    DeliverySerializer,
    PlatformRouteSerializer,
    RuleRunSerializer,
    RuleSerializer,
    RunRequestSerializer,
    SnapshotSerializer,
)


class RuleScoped(WorkspaceScoped):
    def get_queryset(self):
        return Rule.objects.filter(workspace__in=self.user_workspaces()).prefetch_related("channels")

    def user_rule(self):
        return generics.get_object_or_404(
            Rule.objects.filter(workspace__in=self.user_workspaces()), pk=self.kwargs["pk"]
        )


class RuleListCreateApi(RuleScoped, generics.ListAPIView):
    serializer_class = RuleSerializer

    def post(self, request):
        data = RuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.rule_create(user=request.user, **data.validated_data)
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(RuleScoped, generics.RetrieveDestroyAPIView):
    serializer_class = RuleSerializer

    def patch(self, request, pk):
        rule = self.get_object()
        data = RuleSerializer(rule, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {key: value for key, value in data.validated_data.items() if key != "workspace_id"}
        return Response(RuleSerializer(services.rule_update(rule=rule, **changes)).data)

    def perform_destroy(self, rule):
        services.rule_delete(rule=rule)


class RuleRunApi(RuleScoped, generics.GenericAPIView):
    """POST /rules/{id}/run: a test run, ahead of the scheduled ones. 202 {"run": id}."""

    serializer_class = RunRequestSerializer
    throttle_classes = [EnqueueThrottle]
    throttle_scope = "runs"

    @extend_schema(
        request=RunRequestSerializer,
        responses={
            202: inline_serializer("RunAccepted", {"run": serializers.IntegerField(), "url": serializers.URLField()})
        },
    )
    def post(self, request, pk):
        rule = self.get_object()
        data = RunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.rule_run_request(user=request.user, rule=rule, **data.validated_data)
        url = request.build_absolute_uri(reverse("run-detail", args=[run.pk]))
        return Response({"run": run.pk, "url": url}, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class RuleRunListApi(RuleScoped, generics.ListAPIView):
    serializer_class = RuleRunSerializer

    def get_queryset(self):
        return with_attempts(self.user_rule().runs.all())


class RunDetailApi(WorkspaceScoped, generics.RetrieveAPIView):
    serializer_class = RuleRunSerializer

    def get_queryset(self):
        return with_attempts(RuleRun.objects.filter(workspace__in=self.user_workspaces()))


class RuleSnapshotListApi(RuleScoped, generics.ListAPIView):
    serializer_class = SnapshotSerializer

    def get_queryset(self):
        return Snapshot.objects.filter(rule=self.user_rule())


class AlertListApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = AlertSerializer

    def get_queryset(self):
        filters = AlertQuerySerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        alerts = with_attempts(Alert.objects.filter(workspace__in=self.user_workspaces()), "deliveries__attempt_log")
        wanted = filters.validated_data
        if "rule" in wanted:
            alerts = alerts.filter(rule_id=wanted["rule"])
        if "kind" in wanted:
            alerts = alerts.filter(kind=wanted["kind"])
        return alerts


class AlertDetailApi(WorkspaceScoped, generics.RetrieveAPIView):
    serializer_class = AlertSerializer

    def get_queryset(self):
        return with_attempts(Alert.objects.filter(workspace__in=self.user_workspaces()), "deliveries__attempt_log")


class ChannelScoped(WorkspaceScoped):
    serializer_class = ChannelSerializer

    def get_queryset(self):
        return Channel.objects.filter(workspace__in=self.user_workspaces())


class ChannelListCreateApi(ChannelScoped, generics.ListAPIView):
    def post(self, request):
        data = ChannelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel, secret = services.channel_create(user=request.user, **data.validated_data)
        body = ChannelSerializer(channel).data
        if secret:
            # Shown once: the receiver checks X-Conveyor-Signature with it.
            body["secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)


class ChannelDetailApi(ChannelScoped, generics.RetrieveDestroyAPIView):
    def patch(self, request, pk):
        channel = self.get_object()
        data = ChannelSerializer(channel, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {key: value for key, value in data.validated_data.items() if key not in ("workspace_id", "kind")}
        return Response(ChannelSerializer(services.channel_update(channel=channel, **changes)).data)


class ChannelTestApi(ChannelScoped, generics.GenericAPIView):
    serializer_class = StrictSerializer  # takes no fields
    throttle_classes = [EnqueueThrottle]
    throttle_scope = "channel-tests"

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer("TestQueued", {"delivery": DeliverySerializer(), "url": serializers.URLField()})
        },
    )
    def post(self, request, pk):
        channel = self.get_object()
        StrictSerializer(data=request.data).is_valid(raise_exception=True)  # takes no fields
        delivery = services.channel_test(channel=channel)
        url = request.build_absolute_uri(reverse("delivery-detail", args=[delivery.pk]))
        body = {"delivery": DeliverySerializer(delivery).data, "url": url}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class DeliveryDetailApi(WorkspaceScoped, generics.RetrieveAPIView):
    serializer_class = DeliverySerializer

    def get_queryset(self):
        return with_attempts(AlertDelivery.objects.filter(workspace__in=self.user_workspaces()))


class PlatformRouteScoped(WorkspaceScoped):
    serializer_class = PlatformRouteSerializer

    def get_queryset(self):
        return PlatformRoute.objects.filter(workspace__in=self.user_workspaces())


class PlatformRouteListCreateApi(PlatformRouteScoped, generics.ListAPIView):
    def post(self, request):
        data = PlatformRouteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        route = services.platform_route_create(user=request.user, **data.validated_data)
        return Response(PlatformRouteSerializer(route).data, status=status.HTTP_201_CREATED)


class PlatformRouteDetailApi(PlatformRouteScoped, generics.RetrieveDestroyAPIView):
    def patch(self, request, pk):
        route = self.get_object()
        data = PlatformRouteSerializer(route, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            PlatformRouteSerializer(services.platform_route_update(route=route, **data.validated_data)).data
        )

    def perform_destroy(self, route):
        services.platform_route_delete(route=route)
