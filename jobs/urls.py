from django.urls import path

from . import apis

urlpatterns = [
    path("queues/", apis.QueueListApi.as_view(), name="queue-list"),
    path("queues/cleanup", apis.QueueCleanupApi.as_view(), name="queue-cleanup"),
    path("queues/<str:name>/pause", apis.QueuePauseApi.as_view(), name="queue-pause"),
    path("queues/<str:name>/resume", apis.QueueResumeApi.as_view(), name="queue-resume"),
    path("queues/<str:name>/requeue-failed", apis.QueueRequeueFailedApi.as_view(), name="queue-requeue-failed"),
]
