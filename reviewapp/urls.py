from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from reviewapp import apis, converters, views  # noqa: F401 - converters registers <id:>
from reviewapp.auth_forms import ThrottledAdminAuthenticationForm, ThrottledLoginView
from reviewapp.health import healthz
from reviewapp.middleware import content_security_policy

REDOC_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

# The admin signs in through the same throttle as /login/ and the token endpoint.
admin.site.login_form = ThrottledAdminAuthenticationForm

api_v1 = [
    # What agents call on every action and conversation comes first: Django tries the patterns
    # in order, and the action request used to match after ~50 others (0.2 ms of a 4 ms request,
    # in-process). No pattern here can match another's paths (tests/test_urls.py), so the order
    # is only speed.
    path("", include("escalations.urls_api")),
    path("conversations", apis.ConversationsApi.as_view(), name="conversations"),
    path("judge-scores", apis.JudgeScoreAddApi.as_view(), name="judge-scores"),
    path("auth/token", apis.AuthTokenCreateApi.as_view(), name="auth-token"),
    path("auth/token/current", apis.AuthTokenRevokeApi.as_view(), name="auth-token-current"),
    path("auth/tokens", apis.PersonalTokenListApi.as_view(), name="auth-tokens"),
    path("auth/tokens/<id:token_id>", apis.PersonalTokenRevokeApi.as_view(), name="auth-token-detail"),
    path("me", apis.MeApi.as_view(), name="me"),
    path("projects", apis.ProjectListApi.as_view(), name="projects"),
    path("projects/<id:project_id>", apis.ProjectUpdateApi.as_view(), name="project-detail"),
    path(
        "projects/<id:project_id>/frustration-terms",
        apis.ProjectFrustrationTermsApi.as_view(),
        name="project-frustration-terms",
    ),
    path("api-keys", apis.ApiKeyListCreateApi.as_view(), name="api-keys"),
    path("api-keys/<id:key_id>/revoke", apis.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
    path("conversations/<id:conversation_id>", apis.ConversationDetailApi.as_view(), name="conversation-detail"),
    path("", include("labeling.urls_api")),
    path("", include("escalations.urls_decisions")),
    path("", include("escalations.urls_api_webhooks")),
    path("", include("escalations.urls_api_insight")),
    path("", include("evaluation.urls_api")),
    path("", include("provisioning.urls_api")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers and crawlers ask for /favicon.ico whatever the page links; answer with the icon
    # rather than a logged 404 on every first visit.
    path("favicon.ico", views.favicon, name="favicon"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script is served from its own URL (the split view), so the site's
    # policy holds there.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="reviewapp/swagger_ui.html"),
        name="api-docs",
    ),
    # Redoc renders with styled-components, which writes its CSS into <style> elements at run
    # time: this one page allows inline styles (not scripts), and a worker from a blob: URL for
    # its search. It shows no user content, only the OpenAPI schema.
    path(
        "api/redoc/",
        content_security_policy(REDOC_CONTENT_SECURITY_POLICY)(
            SpectacularRedocView.as_view(url_name="schema", template_name="reviewapp/redoc.html")
        ),
        name="api-redoc",
    ),
    path("admin/", admin.site.urls),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("org/switch", views.organization_switch, name="org-switch"),
    path("preferences/system-prompt", views.system_prompt_preference, name="preference-system-prompt"),
    path("conversations/", views.conversation_list, name="conversation-list"),
    path("conversations/<id:conversation_id>/", views.conversation_detail, name="conversation-detail"),
    path("settings/api-keys/", views.api_key_list, name="api-key-list"),
    path("settings/api-keys/<id:key_id>/revoke", views.api_key_revoke, name="api-key-revoke"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/<id:membership_id>/role", views.member_role, name="member-role"),
    path("settings/members/<id:membership_id>/remove", views.member_remove, name="member-remove"),
    path("settings/tokens/", views.personal_token_list, name="personal-token-list"),
    path("settings/tokens/<id:token_id>/revoke", views.personal_token_revoke, name="personal-token-revoke"),
    path("labeling/", include("labeling.urls")),
    path("escalations/", include("escalations.urls")),
    path("evaluation/", include("evaluation.urls")),
    path("projects/", include("provisioning.urls")),
    # The settings pages live together under /settings/; escalations' own is in its app.
    path(
        "settings/webhooks/",
        RedirectView.as_view(pattern_name="escalations:webhook-settings"),
        name="webhook-settings",
    ),
]
