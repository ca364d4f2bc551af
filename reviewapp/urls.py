from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from reviewapp import apis, converters, views  # noqa: F401 - converters registers <id:>
from reviewapp.health import healthz

api_v1 = [
    path("auth/token", apis.AuthTokenCreateApi.as_view(), name="auth-token"),
    path("auth/token/current", apis.AuthTokenRevokeApi.as_view(), name="auth-token-current"),
    path("me", apis.MeApi.as_view(), name="me"),
    path("projects", apis.ProjectListApi.as_view(), name="projects"),
    path("api-keys", apis.ApiKeyListCreateApi.as_view(), name="api-keys"),
    path("api-keys/<id:key_id>/revoke", apis.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
    path("conversations", apis.ConversationsApi.as_view(), name="conversations"),
    path("conversations/<id:conversation_id>", apis.ConversationDetailApi.as_view(), name="conversation-detail"),
    path("judge-scores", apis.JudgeScoreAddApi.as_view(), name="judge-scores"),
    path("", include("labeling.urls_api")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="reviewapp/redoc.html"),
        name="api-redoc",
    ),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("org/switch", views.organization_switch, name="org-switch"),
    path("conversations/", views.conversation_list, name="conversation-list"),
    path("conversations/<id:conversation_id>/", views.conversation_detail, name="conversation-detail"),
    path("settings/api-keys/", views.api_key_list, name="api-key-list"),
    path("settings/api-keys/<id:key_id>/revoke", views.api_key_revoke, name="api-key-revoke"),
    path("labeling/", include("labeling.urls")),
]
