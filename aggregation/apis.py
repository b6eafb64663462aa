from django.db.models import Q
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import EnqueueThrottle
from jobs.serializers import with_attempts
from workspaces.apis import WorkspaceScoped

from . import services
from .models import Notification, Post, RemoteAccount, Source, Subscription, UserAction
from .serializers import (
    ActionRequestSerializer,
    BulkFetchSerializer,
    FetchRequestSerializer,
    FetchSerializer,
    MarkReadSerializer,
    NotificationQuerySerializer,
    NotificationSerializer,
    PostQuerySerializer,
    PostSerializer,
    RemoteAccountSerializer,
    SourceSerializer,
    SubscriptionSerializer,
    UserActionSerializer,
)


class SourceListCreateApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = SourceSerializer

    def get_queryset(self):
        return Source.objects.filter(workspace__in=self.user_workspaces())

    def post(self, request):
        data = SourceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = services.source_create(user=request.user, **data.validated_data)
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)


class SourceDetailApi(WorkspaceScoped, generics.RetrieveDestroyAPIView):
    serializer_class = SourceSerializer

    def get_queryset(self):
        return Source.objects.filter(workspace__in=self.user_workspaces())

    def patch(self, request, pk):
        source = self.get_object()
        data = SourceSerializer(source, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {key: value for key, value in data.validated_data.items() if key != "workspace_id"}
        return Response(SourceSerializer(services.source_update(source=source, **changes)).data)

    def perform_destroy(self, source):
        services.source_delete(source=source)


class SourceFetchApi(WorkspaceScoped, generics.GenericAPIView):
    serializer_class = FetchRequestSerializer
    throttle_classes = [EnqueueThrottle]
    throttle_scope = "fetches"

    def get_queryset(self):
        return Source.objects.filter(workspace__in=self.user_workspaces())

    @extend_schema(request=FetchRequestSerializer, responses={202: FetchSerializer})
    def post(self, request, pk):
        source = self.get_object()
        data = FetchRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fetch = services.source_fetch(
            user=request.user, source=source, delay_seconds=data.validated_data["delay_seconds"]
        )
        return Response(FetchSerializer(fetch).data, status=status.HTTP_202_ACCEPTED)


class SourceBulkFetchApi(APIView):
    throttle_classes = [EnqueueThrottle]
    throttle_scope = "fetches"

    @extend_schema(
        operation_id="sources_fetch_many",
        request=BulkFetchSerializer,
        responses={202: inline_serializer("FetchesQueued", {"fetches": FetchSerializer(many=True)})},
    )
    def post(self, request):
        data = BulkFetchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fetches = services.sources_fetch_bulk(user=request.user, source_ids=data.validated_data["ids"])
        return Response({"fetches": FetchSerializer(fetches, many=True).data}, status=status.HTTP_202_ACCEPTED)


class SourceFetchListApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = FetchSerializer

    def get_queryset(self):
        source = generics.get_object_or_404(
            Source.objects.filter(workspace__in=self.user_workspaces()), pk=self.kwargs["pk"]
        )
        return with_attempts(source.fetches.all())


class PostListApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = PostSerializer

    def get_queryset(self):
        filters = PostQuerySerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        posts = Post.objects.filter(workspace__in=self.user_workspaces())
        wanted = filters.validated_data
        if "source" in wanted:
            posts = posts.filter(source_id=wanted["source"])
        if "q" in wanted:
            posts = posts.filter(Q(content_text__icontains=wanted["q"]) | Q(title__icontains=wanted["q"]))
        if "since" in wanted:
            posts = posts.filter(published_at__gte=wanted["since"])
        return posts


class PostDetailApi(WorkspaceScoped, generics.RetrieveAPIView):
    serializer_class = PostSerializer

    def get_queryset(self):
        return Post.objects.filter(workspace__in=self.user_workspaces())


class SubscriptionListCreateApi(WorkspaceScoped, generics.ListAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return Subscription.objects.filter(user=self.request.user, workspace__in=self.user_workspaces())

    def post(self, request):
        data = SubscriptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.subscription_create(user=request.user, **data.validated_data)
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionDetailApi(WorkspaceScoped, generics.RetrieveDestroyAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return Subscription.objects.filter(user=self.request.user, workspace__in=self.user_workspaces())


class NotificationListApi(generics.ListAPIView):
    serializer_class = NotificationSerializer

    def get_queryset(self):
        filters = NotificationQuerySerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        notifications = Notification.objects.filter(user=self.request.user).select_related("post", "subscription")
        if "unread" in filters.validated_data:
            notifications = notifications.filter(read_at__isnull=filters.validated_data["unread"] == "true")
        return notifications


class NotificationMarkReadApi(APIView):
    @extend_schema(
        request=MarkReadSerializer,
        responses=inline_serializer("MarkedRead", {"marked_read": serializers.IntegerField()}),
    )
    def post(self, request):
        data = MarkReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        marked = services.notifications_mark_read(user=request.user, ids=data.validated_data.get("ids"))
        return Response({"marked_read": marked})


class RemoteAccountListCreateApi(generics.ListAPIView):
    serializer_class = RemoteAccountSerializer

    def get_queryset(self):
        return RemoteAccount.objects.filter(user=self.request.user)

    def post(self, request):
        data = RemoteAccountSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.remote_account_connect(
            user=request.user,
            instance_url=data.validated_data["instance"],
            access_token=data.validated_data["access_token"],
            workspace_id=data.validated_data.get("workspace_id"),
        )
        return Response(RemoteAccountSerializer(account).data, status=status.HTTP_201_CREATED)


class RemoteAccountDetailApi(generics.RetrieveDestroyAPIView):
    serializer_class = RemoteAccountSerializer

    def get_queryset(self):
        return RemoteAccount.objects.filter(user=self.request.user)


class PostActionApi(WorkspaceScoped, generics.GenericAPIView):
    serializer_class = ActionRequestSerializer
    throttle_classes = [EnqueueThrottle]
    throttle_scope = "actions"

    def get_queryset(self):
        return Post.objects.filter(workspace__in=self.user_workspaces()).select_related("source")

    @extend_schema(request=ActionRequestSerializer, responses={202: UserActionSerializer})
    def post(self, request, pk):
        post = self.get_object()
        data = ActionRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user_action = services.post_act(user=request.user, post=post, **data.validated_data)
        body = UserActionSerializer(user_action, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["url"])})


class UserActionListApi(generics.ListAPIView):
    serializer_class = UserActionSerializer

    def get_queryset(self):
        return with_attempts(UserAction.objects.filter(user=self.request.user))


class UserActionDetailApi(generics.RetrieveAPIView):
    serializer_class = UserActionSerializer

    def get_queryset(self):
        return with_attempts(UserAction.objects.filter(user=self.request.user))
