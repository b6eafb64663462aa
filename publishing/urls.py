from django.urls import path

from . import apis

urlpatterns = [
    path("projects/", apis.ProjectListCreateApi.as_view(), name="project-list"),
    path("publishing/initiate", apis.PublishingInitiateApi.as_view(), name="publishing-initiate"),
    path("publishing/", apis.PublishingListApi.as_view(), name="publishing-list"),
    path("publishing/<int:pk>", apis.PublishingDetailApi.as_view(), name="publishing-detail"),
]
