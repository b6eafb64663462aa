from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import health, services


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        report = health.report()
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status=code)


class QueueListApi(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request):
        return Response({"queues": services.queue_stats()})


class PauseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, default="")


class QueuePauseApi(APIView):
    permission_classes = [IsAdminUser]

    def post(self, request, name):
        data = PauseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.queue_pause(name=name, by=request.user, reason=data.validated_data["reason"])
        return Response({"name": name, "paused": True})


class QueueResumeApi(APIView):
    permission_classes = [IsAdminUser]

    def post(self, request, name):
        services.queue_resume(name=name)
        return Response({"name": name, "paused": False})


class QueueRequeueFailedApi(APIView):
    permission_classes = [IsAdminUser]

    def post(self, request, name):
        return Response({"name": name, "requeued": services.queue_requeue_failed(name=name)})


class QueueCleanupApi(APIView):
    permission_classes = [IsAdminUser]

    def post(self, request):
        return Response({"trimmed": services.queue_cleanup()})
