from django.urls import path

from . import apis

urlpatterns = [
    path("sources/", apis.SourceListCreateApi.as_view(), name="source-list"),
    path("sources/fetch", apis.SourceBulkFetchApi.as_view(), name="source-bulk-fetch"),
    path("sources/<int:pk>", apis.SourceDetailApi.as_view(), name="source-detail"),
    path("sources/<int:pk>/fetch", apis.SourceFetchApi.as_view(), name="source-fetch"),
    path("sources/<int:pk>/fetches/", apis.SourceFetchListApi.as_view(), name="source-fetches"),
    path("posts/", apis.PostListApi.as_view(), name="post-list"),
    path("posts/<int:pk>", apis.PostDetailApi.as_view(), name="post-detail"),
    path("posts/<int:pk>/actions", apis.PostActionApi.as_view(), name="post-actions"),
    path("actions/", apis.UserActionListApi.as_view(), name="action-list"),
    path("actions/<int:pk>", apis.UserActionDetailApi.as_view(), name="action-detail"),
    path("accounts/", apis.RemoteAccountListCreateApi.as_view(), name="remote-account-list"),
    path("accounts/<int:pk>", apis.RemoteAccountDetailApi.as_view(), name="remote-account-detail"),
    path("subscriptions/", apis.SubscriptionListCreateApi.as_view(), name="subscription-list"),
    path("subscriptions/<int:pk>", apis.SubscriptionDetailApi.as_view(), name="subscription-detail"),
    path("notifications/", apis.NotificationListApi.as_view(), name="notification-list"),
    path("notifications/read", apis.NotificationMarkReadApi.as_view(), name="notification-read"),
]
