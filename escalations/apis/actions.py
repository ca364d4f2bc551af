"""Action requests: an agent asks (`POST /api/v1/actions`), then reads the outcome."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from escalations import action_input, selectors, services
from escalations.apis._common import body_of, object_of, project_for
from escalations.apis.waiting import WAIT_MAX_SECONDS
from escalations.models import ActionStatus
from escalations.serializers import (
    ActionEventOutputSerializer,
    ActionOutputSerializer,
    action_event_payload,
    action_payload,
)
from reviewapp import selectors as core_selectors
from reviewapp import services as core_services
from reviewapp.authentication import BearerTokenAuthentication
from reviewapp.errors import ValidationFailed
from reviewapp.exceptions import api_exception_handler
from reviewapp.pagination import IdCursorPagination
from reviewapp.parsers import BoundedJSONParser
from reviewapp.permissions import principal_of
from reviewapp.principal import AgentUser, Principal
from reviewapp.serializers import ERROR_RESPONSE
from reviewapp.tokens import PROJECT_KEY_PREFIX

# An action's trail is short (a few tiers, votes and delivery attempts); this bounds the answer
# should a retried webhook pile attempts up.
EVENTS_MAX = 1000


class ActionInputSerializer(serializers.Serializer):
    """Documentation of the body; escalations/action_input.py validates it (one source)."""

    project = serializers.SlugField(required=False, help_text="Required with a personal token.")
    external_id = serializers.CharField(
        max_length=action_input.EXTERNAL_ID_MAX,
        help_text="Your idempotency key: the same id with the same body answers 200 with the same "
        "action; with a different body, 409 naming the first field that differs.",
    )
    action = serializers.RegexField(
        action_input.ACTION_PATTERN.pattern, max_length=action_input.ACTION_MAX, help_text="e.g. `refund`."
    )
    args = serializers.DictField(required=False, help_text="A JSON object, at most 32 levels deep and 64 KB.")
    confidence = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    risk_tags = serializers.ListField(
        child=serializers.CharField(max_length=action_input.RISK_TAG_MAX),
        max_length=action_input.RISK_TAGS_MAX,
        required=False,
    )
    reasoning = serializers.CharField(required=False, allow_blank=True, max_length=action_input.REASONING_MAX)
    end_user_id = serializers.CharField(required=False, allow_blank=True, max_length=action_input.END_USER_ID_MAX)
    conversation_external_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=action_input.CONVERSATION_EXTERNAL_ID_MAX,
        help_text="Links the action to that conversation, whether it arrives before or after.",
    )
    agent_version = serializers.CharField(required=False, allow_blank=True, max_length=action_input.AGENT_VERSION_MAX)
    callback_url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=action_input.CALLBACK_URL_MAX,
        help_text="http(s) only, with a host, no user name or password, no whitespace.",
    )


class ActionFilterSerializer(serializers.Serializer):
    project = serializers.SlugField(required=False, help_text="People: one project of the organization.")
    status = serializers.ChoiceField(choices=ActionStatus.choices, required=False)
    action = serializers.CharField(required=False, max_length=action_input.ACTION_MAX)
    since = serializers.DateTimeField(required=False, help_text="Created at or after (inclusive).")
    agent_version = serializers.CharField(required=False, max_length=action_input.AGENT_VERSION_MAX)
    end_user_id = serializers.CharField(required=False, max_length=action_input.END_USER_ID_MAX)


def _filters(request: Request, principal: Principal) -> selectors.ActionFilters:
    params = ActionFilterSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    values = dict(params.validated_data)
    slug = values.pop("project", None)
    project = principal.project
    if project is None and slug:
        project = core_selectors.project_get_by_slug(organization=principal.organization, slug=slug)
        if project is None:
            raise ValidationFailed("Unknown project.", errors={"project": [f"No project '{slug}' here."]})
    return selectors.ActionFilters(project=project, **values)


class ActionPageSerializer(serializers.Serializer):
    """One page of the cursor-paginated list: follow `next` until it is null."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True)
    results = ActionOutputSerializer(many=True)


class ActionsApi(APIView):
    """`POST` asks before acting; `GET` lists actions, newest first.

    `as_view()` puts a lean path for `POST` in front of DRF's dispatch (`_post_lean`): the
    hottest request of the API, sent by agents before each action, through the same
    authenticators, permission classes, parser, service and exception handler, without DRF's
    per-request machinery. Anything unusual goes to this view, which answers it as before."""

    required_capability = {"GET": "actions.read", "POST": "actions.request"}

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponse]:
        view = super().as_view(**initkwargs)

        def actions(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                response = _post_lean(request)
                if response is not None:
                    return response
            return view(request, *args, **kwargs)

        # The view's attributes (cls, initkwargs, csrf_exempt) stay readable: the OpenAPI
        # generator and the permission tests find ActionsApi behind the route, as before.
        return functools.update_wrapper(actions, view)

    @extend_schema(
        operation_id="v1_actions_list",
        parameters=[ActionFilterSerializer],
        responses={200: ActionPageSerializer},
        tags=["actions"],
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        qs = selectors.action_list(organization=principal.organization, filters=_filters(request, principal))
        paginator = IdCursorPagination()  # newest first, like the conversations list
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([action_payload(a) for a in page])

    @extend_schema(
        request=ActionInputSerializer,
        description=(
            "The project's current policy approves or rejects the action now (`decided_by: policy`) "
            "or escalates it (`status: pending`, with `ladder`, `tier` and `due_at`). Anything that "
            "goes wrong on the way escalates; nothing is approved by default. 201: created; 200: "
            "the same request again (same `external_id`, same body): the same action, as it is now."
        ),
        responses={
            200: OpenApiResponse(ActionOutputSerializer, description="A repeat: the action first created."),
            201: ActionOutputSerializer,
            409: OpenApiResponse(
                ERROR_RESPONSE, description="`external_id` was used for another request; `errors` names the field."
            ),
        },
        tags=["actions"],
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        data = body_of(request)
        project = project_for(principal, data.get("project"))
        action, created = services.action_request(principal=principal, project=project, data=data)
        return Response(action_payload(action), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


_RENDERER = JSONRenderer()
# What DRF's dispatch adds to every answer of ActionsApi (finalize_response): Allow, from the
# methods the view has (HEAD follows GET).
_ALLOW = ", ".join(
    m.upper()
    for m in ActionsApi.http_method_names
    if hasattr(ActionsApi, m) or (m == "head" and hasattr(ActionsApi, "get"))
)


def _answer(data: Any, status_code: int) -> HttpResponse:
    response = HttpResponse(_RENDERER.render(data), status=status_code, content_type=_RENDERER.media_type)
    response["Allow"] = _ALLOW
    return response


def _lean_applies(request: HttpRequest) -> bool:
    """The request every agent sends: a JSON body with a length, a bearer token, JSON or
    anything accepted, no query string (DRF's `?format=`). Anything else takes DRF's path, for
    its negotiation and parsing of the unusual (406, 415, an empty body, a charset)."""
    meta = request.META
    return (
        meta.get("CONTENT_TYPE") == "application/json"
        and meta.get("HTTP_ACCEPT", "*/*") in ("*/*", "application/json")
        and not meta.get("QUERY_STRING")
        and (meta.get("CONTENT_LENGTH") or "0") != "0"
        and meta.get("HTTP_AUTHORIZATION", "").startswith(("Bearer ", "bearer "))
    )


def _post_lean(request: HttpRequest) -> HttpResponse | None:
    """`POST /api/v1/actions` as ActionsApi answers it, or None to let ActionsApi answer: when
    the request is unusual (`_lean_applies`), or the caller is not authenticated or not allowed
    (the view authenticates again and answers the 401 or 403, with its headers; failures are
    rare and cost one more key lookup)."""
    if not _lean_applies(request):
        return None
    if ActionsApi.authentication_classes == [BearerTokenAuthentication]:
        parts = request.META["HTTP_AUTHORIZATION"].split()
        if len(parts) == 2 and parts[1].startswith(PROJECT_KEY_PREFIX):
            return _post_lean_agent(request, parts[1])
    return _post_lean_authenticated(request)


def _post_lean_authenticated(request: HttpRequest) -> HttpResponse | None:
    """`_post_lean` after the view's own authenticators, as the view runs them."""
    try:
        for authenticator in ActionsApi.authentication_classes:
            found = authenticator().authenticate(request)  # reads only request.META
            if found is not None:
                break
        else:
            return None
    except exceptions.APIException:
        return None
    # What DRF's Request leaves on Django's request (middleware may look).
    request.user, request.auth = found  # type: ignore[attr-defined]
    if not _allowed(request):
        return None
    try:
        data = object_of(BoundedJSONParser().parse(io.BytesIO(request.body)))
    except Exception as exc:
        return _answer_exception(request, exc)
    return _decide(request, data, None)


def _post_lean_agent(request: HttpRequest, raw_key: str) -> HttpResponse | None:
    """The lean path for a project key: the key, its project's policy and whether the
    external_id is taken, in one statement (selectors.action_request_principal), then as
    BearerTokenAuthentication and the rest of `_post_lean`. The body is parsed first (for its
    external_id); a body that does not parse, or has no external_id to look up, takes
    `_post_lean_authenticated` (which authenticates before it parses: a 401 before a 400)."""
    try:
        data = object_of(BoundedJSONParser().parse(io.BytesIO(request.body)))
    except Exception:
        return _post_lean_authenticated(request)
    external_id = data.get("external_id")
    if type(external_id) is not str or not external_id or "\x00" in external_id:
        return _post_lean_authenticated(request)
    found = selectors.action_request_principal(raw_key=raw_key, external_id=external_id)
    if found is None:
        return None
    principal, context = found
    core_services.credential_touch(principal=principal)
    request.user, request.auth = AgentUser(principal.api_key), principal  # type: ignore[attr-defined]
    if not _allowed(request):
        return None
    return _decide(request, data, (external_id, context))


def _allowed(request: HttpRequest) -> bool:
    return all(permission().has_permission(request, ActionsApi) for permission in ActionsApi.permission_classes)


def _decide(
    request: HttpRequest, data: dict[str, Any], known_context: tuple[str, selectors.RequestContext] | None
) -> HttpResponse:
    try:
        principal = principal_of(request)  # type: ignore[arg-type]
        project = project_for(principal, data.get("project"))
        if principal.project is None or project.pk != principal.project.pk:
            known_context = None  # read for the key's project, not this one
        action, created = services.action_request(
            principal=principal, project=project, data=data, known_context=known_context
        )
    except Exception as exc:
        return _answer_exception(request, exc)
    return _answer(action_payload(action), status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _answer_exception(request: HttpRequest, exc: Exception) -> HttpResponse:
    """As DRF's handle_exception: the API's handler answers what it knows, the rest is raised."""
    handled = api_exception_handler(exc, {"request": request, "view": None})
    if handled is None:
        raise exc
    response = _answer(handled.data, handled.status_code)
    for header, value in handled.items():
        if header != "Content-Type":
            response[header] = value
    return response


class ActionWaitQuerySerializer(serializers.Serializer):
    """Documentation of `?wait=`. A GET that carries it never reaches ActionDetailApi: it is
    served by escalations/apis/waiting.py (reviewapp.asgi hands it over under ASGI,
    ActionWaitMiddleware under WSGI), which validates it the same way (400 naming `wait`)."""

    wait = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=WAIT_MAX_SECONDS,
        help_text=(
            f"Long poll: answer as soon as the action is decided, or after this many seconds (1 to "
            f"{WAIT_MAX_SECONDS}) with its pending state. 0 or absent: at once. Served by the ASGI server "
            "(`reviewapp.asgi`), a wait holds no thread and no database connection. Served by a sync "
            "(WSGI) worker, it holds a thread: at most `ACTION_WAIT_THREADED_MAX` (4) wait at once per "
            "process, and past that (or with it set to 0, as on production sync workers) the pending "
            "state is answered at once with `Retry-After: 1`: ask again then."
        ),
    )


class ActionDetailApi(APIView):
    required_capability = "actions.read"

    @extend_schema(
        parameters=[
            ActionWaitQuerySerializer,
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=[200],
                description="With `wait`, when this server could not hold the wait: the action is still "
                "pending; ask again after this many seconds.",
            ),
        ],
        responses={200: ActionOutputSerializer},
        tags=["actions"],
    )
    def get(self, request: Request, action_id: int) -> Response:
        principal = principal_of(request)
        action = selectors.action_get(
            organization=principal.organization, action_id=action_id, project=principal.project
        )
        return Response(action_payload(action))


class ActionEventsApi(APIView):
    """The action's trail, oldest first: created, the policy's decision, tiers entered, claims,
    votes, the decision, timeouts, webhook deliveries."""

    required_capability = "actions.read"

    @extend_schema(
        responses={
            200: inline_serializer("ActionEventList", fields={"results": ActionEventOutputSerializer(many=True)})
        },
        tags=["actions"],
    )
    def get(self, request: Request, action_id: int) -> Response:
        principal = principal_of(request)
        action = selectors.action_get(
            organization=principal.organization, action_id=action_id, project=principal.project
        )
        events = selectors.action_event_list(organization=principal.organization, action=action)[:EVENTS_MAX]
        body: dict[str, Any] = {"results": [action_event_payload(e) for e in events]}
        return Response(body)
