from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import health, services

HEALTH_REPORT = inline_serializer(
    "HealthReport",
    {
        "status": serializers.ChoiceField(choices=["ok", "degraded"]),
        "database": serializers.ChoiceField(choices=["connected", "unavailable"]),
        "cache": serializers.ChoiceField(choices=["connected", "unavailable"]),
        "queue": serializers.ChoiceField(choices=["connected", "unavailable"]),
        "workers": serializers.IntegerField(),
        "timestamp": serializers.DateTimeField(),
    },
)
QUEUE_STATE = inline_serializer("QueueState", {"name": serializers.CharField(), "paused": serializers.BooleanField()})


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: HEALTH_REPORT, 503: HEALTH_REPORT})
    def get(self, request):
        report = health.report()
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status=code)


class QueueListApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        responses=inline_serializer("QueueList", {"queues": serializers.ListField(child=serializers.DictField())})
    )
    def get(self, request):
        return Response({"queues": services.queue_stats()})


class PauseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, default="")


class QueuePauseApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=PauseInputSerializer, responses=QUEUE_STATE)
    def post(self, request, name):
        data = PauseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.queue_pause(name=name, by=request.user, reason=data.validated_data["reason"])
        return Response({"name": name, "paused": True})


class QueueResumeApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses=QUEUE_STATE)
    def post(self, request, name):
        services.queue_resume(name=name)
        return Response({"name": name, "paused": False})


class QueueRequeueFailedApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "QueueRequeued", {"name": serializers.CharField(), "requeued": serializers.IntegerField()}
        ),
    )
    def post(self, request, name):
        return Response({"name": name, "requeued": services.queue_requeue_failed(name=name)})


class QueueCleanupApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses=inline_serializer("QueueCleanup", {"trimmed": serializers.DictField()}))
    def post(self, request):
        return Response({"trimmed": services.queue_cleanup()})
