"""JSON API for the core. Each view parses, calls one service or selector, and serializes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp import derived_signals, login_throttle, selectors, services, textsearch, validation
from reviewapp.errors import ApplicationError, PayloadTooLarge, ValidationFailed
from reviewapp.ingest_schemas import (
    ConversationBatchIn,
    ConversationIn,
    JudgeScoreBatchIn,
    attach_raw_messages,
    errors_from_pydantic,
)
from reviewapp.models import Organization, SignalKind, SignalSource
from reviewapp.pagination import IdCursorPagination
from reviewapp.permissions import ANY_MEMBER, principal_of
from reviewapp.principal import Principal
from reviewapp.serializers import (
    ERROR_RESPONSE,
    ConversationSummarySerializer,
    ConversationWithSignalsSerializer,
)


def read_json_body(request: Request) -> Any:
    """Read and decode a JSON body ourselves: enforces the ingest size limit with a 413 and
    decodes with orjson (validation.json_loads), several times faster than the stdlib on big
    batches."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if not content_type.startswith("application/json"):
        raise ApplicationError("Send JSON with 'Content-Type: application/json'.", status=415)
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLarge(f"Request body is over the {limit}-byte limit; send smaller batches.")
    try:
        body = request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge(f"Request body is over the {limit}-byte limit; send smaller batches.") from exc
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body is over the {limit}-byte limit; send smaller batches.")
    # Bounded like every JSON body (depth, NUL, NaN/infinity; 400 naming the field), with
    # integers beyond 64 bits kept exact: see validation.json_loads.
    return validation.json_loads(body)


# --- auth ----------------------------------------------------------------------------------


class AuthTokenCreateApi(APIView):
    """Exchange a username and password for a personal API token."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"})
        organization = serializers.SlugField(required=False, help_text="Needed when you belong to several.")
        name = serializers.CharField(required=False, default="", max_length=100)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Shown once. Send as `Authorization: Bearer <token>`.")
        organization = serializers.CharField()
        role = serializers.CharField()
        expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            429: OpenApiResponse(
                ERROR_RESPONSE,
                description="Too many failed sign-ins from this address or for this username; see Retry-After.",
            ),
        },
        auth=[],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = login_throttle.authenticate_throttled(
                request._request, username=data.validated_data["username"], password=data.validated_data["password"]
            )
        except login_throttle.Throttled as exc:
            throttled = exceptions.Throttled(detail=exc.message)
            throttled.wait = exc.retry_after
            raise throttled from exc
        if user is None:
            raise ApplicationError("Invalid username or password.", status=401)
        memberships = list(selectors.membership_list_for_user(user=user))
        wanted = data.validated_data.get("organization")
        if wanted:
            memberships = [m for m in memberships if m.organization.slug == wanted]
            if not memberships:
                raise ValidationFailed(
                    "Unknown organization.", errors={"organization": ["You are not a member of it."]}
                )
        if not memberships:
            raise ApplicationError("You belong to no organization.", status=403)
        if len(memberships) > 1:
            slugs = ", ".join(m.organization.slug for m in memberships)
            raise ValidationFailed(
                "Name the organization.", errors={"organization": [f"You belong to several: {slugs}."]}
            )
        membership = memberships[0]
        issued = services.personal_token_create(
            user=user, organization=membership.organization, name=data.validated_data["name"]
        )
        out = {
            "token": issued.raw,
            "organization": membership.organization.slug,
            "role": membership.role,
            "expires_at": issued.record.expires_at,
        }
        return Response(self.OutputSerializer(out).data, status=status.HTTP_201_CREATED)


class AuthTokenRevokeApi(APIView):
    """Revoke the personal token this request is made with (log out a script)."""

    required_capability = ANY_MEMBER  # your own token, whatever your role

    @extend_schema(responses={204: None, 400: ERROR_RESPONSE}, tags=["auth"])
    def delete(self, request: Request) -> Response:
        principal = principal_of(request)
        if principal.token is None:
            raise ValidationFailed("Project API keys are revoked by an admin, not by themselves.")
        services.personal_token_revoke(token=principal.token, actor=principal.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PersonalTokenOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    organization = serializers.CharField(source="organization.slug")
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    # A plain string: a second choice set named "status" would rename the ingest one's enum.
    status = serializers.CharField(help_text="`active`, `revoked`, `expired` or `password changed`.")


class PersonalTokenListApi(APIView):
    """Your personal tokens in this organization; an admin may ask for everyone's."""

    required_capability = "organization.read"

    class FilterSerializer(serializers.Serializer):
        scope = serializers.ChoiceField(
            choices=["mine", "organization"], default="mine", help_text="`organization` needs the admin role."
        )

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: PersonalTokenOutputSerializer(many=True), 403: ERROR_RESPONSE},
        tags=["auth"],
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        if params.validated_data["scope"] == "organization":
            if not principal.can("tokens.manage"):
                raise exceptions.PermissionDenied("Only an admin may list everyone's tokens.")
            tokens = selectors.personal_token_list(organization=principal.organization)
        else:
            tokens = selectors.personal_token_list(organization=principal.organization, user=principal.user)
        return Response(PersonalTokenOutputSerializer(tokens, many=True).data)


class PersonalTokenRevokeApi(APIView):
    """Revoke one of your tokens, or (admins) anyone's in this organization. Another
    organization's token, or someone else's without the admin role, is a 404."""

    required_capability = "organization.read"

    @extend_schema(responses={204: None, 404: ERROR_RESPONSE}, tags=["auth"])
    def delete(self, request: Request, token_id: int) -> Response:
        principal = principal_of(request)
        owner = None if principal.can("tokens.manage") else principal.user
        token = selectors.personal_token_get(organization=principal.organization, token_id=token_id, user=owner)
        services.personal_token_revoke(token=token, actor=principal.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    required_capability = ANY_MEMBER  # who am I: every caller may ask

    class OutputSerializer(serializers.Serializer):
        organization = serializers.CharField()
        role = serializers.CharField()
        username = serializers.CharField(allow_null=True)
        project = serializers.CharField(allow_null=True)

    @extend_schema(responses={200: OutputSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        p = principal_of(request)
        return Response(
            self.OutputSerializer(
                {
                    "organization": p.organization.slug,
                    "role": p.role,
                    "username": p.user.get_username() if p.user else None,
                    "project": p.project.slug if p.project else None,
                }
            ).data
        )


# --- projects and keys -----------------------------------------------------------------------


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    timezone = serializers.CharField(help_text="IANA zone; daily sampling budgets roll over at its midnight.")
    created_at = serializers.DateTimeField()


class ProjectListApi(APIView):
    required_capability = "organization.read"

    @extend_schema(responses={200: ProjectOutputSerializer(many=True)}, tags=["projects"])
    def get(self, request: Request) -> Response:
        projects = selectors.project_list(organization=principal_of(request).organization)
        return Response(ProjectOutputSerializer(projects, many=True).data)


class ProjectUpdateApi(APIView):
    """Change a project's settings (admins). Today that is its time zone, which sets when the
    daily sampling budgets roll over; the change is audited. Another organization's project is
    a 404."""

    required_capability = "projects.manage"

    class InputSerializer(serializers.Serializer):
        timezone = serializers.CharField(
            max_length=64,
            required=False,
            help_text="An IANA time zone name such as `Europe/Paris` or `UTC`.",
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            # A misspelt field would otherwise be a silent no-op. At most a few named, each
            # cut short: the names are the caller's text.
            unknown = sorted(set(self.initial_data) - set(self.fields))[:5]
            if unknown:
                raise serializers.ValidationError({str(name)[:100]: ["Unknown field."] for name in unknown})
            return attrs

    @extend_schema(
        request=InputSerializer,
        responses={200: ProjectOutputSerializer, 400: ERROR_RESPONSE, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=["projects"],
    )
    def patch(self, request: Request, project_id: int) -> Response:
        principal = principal_of(request)
        project = selectors.project_get(organization=principal.organization, project_id=project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "timezone" in data.validated_data:
            project = services.project_timezone_set(
                project=project, time_zone=data.validated_data["timezone"], actor=principal.user
            )
        return Response(ProjectOutputSerializer(project).data)


class ProjectFrustrationTermsApi(APIView):
    """A project's own frustration terms, added to the defaults when signals are derived from
    the transcripts of conversations ingested from now on. `PUT` replaces the list (admins)."""

    required_capability = {"GET": "organization.read", "PUT": "projects.manage"}

    class InputSerializer(serializers.Serializer):
        frustration_terms = serializers.ListField(
            child=serializers.CharField(allow_blank=True, trim_whitespace=False),
            help_text="At most 100 terms of at most 60 characters; matched case-insensitively on word boundaries.",
        )

    class OutputSerializer(serializers.Serializer):
        project = serializers.CharField(source="slug")
        frustration_terms = serializers.ListField(child=serializers.CharField())
        default_terms = serializers.SerializerMethodField()

        def get_default_terms(self, project: Any) -> list[str]:
            return list(derived_signals.DEFAULT_FRUSTRATION_TERMS)

    def _project(self, request: Request, project_id: int) -> Any:
        return selectors.project_get(organization=principal_of(request).organization, project_id=project_id)

    @extend_schema(responses={200: OutputSerializer, 404: ERROR_RESPONSE}, tags=["projects"])
    def get(self, request: Request, project_id: int) -> Response:
        return Response(self.OutputSerializer(self._project(request, project_id)).data)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, 400: ERROR_RESPONSE}, tags=["projects"])
    def put(self, request: Request, project_id: int) -> Response:
        project = self._project(request, project_id)
        # The service bounds and names each term (`frustration_terms[3]`); the serializer only
        # documents the shape, so an oversized list is refused before it is walked.
        payload = request.data if isinstance(request.data, dict) else {}
        if "frustration_terms" not in payload:
            raise ValidationFailed("Send the terms.", errors={"frustration_terms": ["This field is required."]})
        project = services.project_frustration_terms_set(
            project=project, terms=payload["frustration_terms"], actor=principal_of(request).user
        )
        return Response(self.OutputSerializer(project).data)


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyListCreateApi(APIView):
    required_capability = "api_keys.manage"

    class InputSerializer(serializers.Serializer):
        project = serializers.SlugField()
        name = serializers.CharField(max_length=100)

    class CreatedSerializer(ApiKeyOutputSerializer):
        key = serializers.CharField(help_text="The raw key. Shown once; store it now.")

    @extend_schema(responses={200: ApiKeyOutputSerializer(many=True)}, tags=["api keys"])
    def get(self, request: Request) -> Response:
        keys = selectors.api_key_list(organization=principal_of(request).organization)
        return Response(ApiKeyOutputSerializer(keys, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer, 400: ERROR_RESPONSE}, tags=["api keys"])
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_resolve(principal=principal, slug=data.validated_data["project"])
        issued = services.api_key_create(project=project, name=data.validated_data["name"], created_by=principal.user)
        body = dict(ApiKeyOutputSerializer(issued.record).data, key=issued.raw)
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    required_capability = "api_keys.manage"

    @extend_schema(request=None, responses={200: ApiKeyOutputSerializer, 404: ERROR_RESPONSE}, tags=["api keys"])
    def post(self, request: Request, key_id: int) -> Response:
        principal = principal_of(request)
        key = selectors.api_key_get(organization=principal.organization, key_id=key_id)
        key = services.api_key_revoke(key=key, actor=principal.user)
        return Response(ApiKeyOutputSerializer(key).data)


# --- conversations ---------------------------------------------------------------------------


class ConversationPageSerializer(serializers.Serializer):
    """One page of the cursor-paginated list: follow `next` until it is null."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True)
    results = ConversationSummarySerializer(many=True)


class ConversationFilterSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=textsearch.MAX_QUERY_CHARS,
        help_text=(
            "Full-text search over what the user, the agent and tools said (not system prompts): "
            'words and "quoted phrases", all of which must appear, case-insensitive, whole words. '
            "No other character is an operator."
        ),
    )
    project = serializers.SlugField(required=False)
    agent_version = serializers.CharField(required=False)
    tag = serializers.CharField(required=False)
    external_id = serializers.CharField(required=False)
    occurred_after = serializers.DateTimeField(required=False, help_text="Inclusive.")
    occurred_before = serializers.DateTimeField(required=False, help_text="Exclusive.")
    feedback_rating = serializers.ChoiceField(choices=["up", "down"], required=False)
    user_rephrased = serializers.BooleanField(required=False, allow_null=True, default=None)
    judge = serializers.CharField(required=False)
    criterion = serializers.CharField(required=False)
    score_min = serializers.FloatField(required=False)
    score_max = serializers.FloatField(required=False)
    signal = serializers.ChoiceField(
        choices=SignalKind.choices, required=False, help_text="Conversations with this signal (agent-sent or derived)."
    )
    signal_source = serializers.ChoiceField(choices=SignalSource.choices, required=False)
    asked_for_human = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The end user asked for a human (said so in feedback, or found in the transcript).",
    )
    labeled = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="At least one person labeled it, in any queue."
    )
    queued = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="It is in a labeling queue (not dropped from it)."
    )

    def validate_q(self, value: str) -> str:
        if len(textsearch.parse(value, limit=None)) > textsearch.MAX_CLAUSES:
            raise serializers.ValidationError(f"At most {textsearch.MAX_CLAUSES} words or phrases.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "score_min" in attrs and "score_max" in attrs and attrs["score_min"] > attrs["score_max"]:
            raise serializers.ValidationError({"score_min": "Must not be above score_max."})
        return attrs


def conversation_filters_from(request: Request, principal: Principal) -> selectors.ConversationFilters:
    params = ConversationFilterSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    values = dict(params.validated_data)
    slug = values.pop("project", None)
    project = principal.project
    if project is None and slug:
        project = selectors.project_get_by_slug(organization=principal.organization, slug=slug)
        if project is None:
            raise ValidationFailed("Unknown project.", errors={"project": [f"No project '{slug}' here."]})
    return selectors.ConversationFilters(project=project, **values)


class IngestResultSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "duplicate"])


class IngestResponseSerializer(serializers.Serializer):
    results = IngestResultSerializer(many=True)


def _org(request: Request) -> Organization:
    return principal_of(request).organization


class ConversationsApi(APIView):
    """`GET` lists conversations (cursor-paginated); `POST` ingests one or a batch."""

    required_capability = {"GET": "conversations.read", "POST": "conversations.ingest"}

    @extend_schema(
        operation_id="v1_conversations_list",
        parameters=[ConversationFilterSerializer],
        responses={200: ConversationPageSerializer, 400: ERROR_RESPONSE},
        tags=["conversations"],
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        filters = conversation_filters_from(request, principal)
        qs = selectors.conversation_list(organization=principal.organization, filters=filters)
        paginator = IdCursorPagination()  # newest first
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ConversationSummarySerializer(page, many=True).data)

    @extend_schema(
        request=ConversationBatchIn,
        description=(
            'Send `{"conversations": [...]}` with up to 1,000 conversations, or one conversation '
            'object on its own. With a personal token add `"project": "<slug>"`. Re-sending an '
            "`external_id` is a duplicate (its new judge scores and feedback are added). A bad item "
            "fails the whole request with 400 naming `conversations[i].field`."
        ),
        responses={
            201: IngestResponseSerializer,
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            413: ERROR_RESPONSE,
        },
        tags=["conversations"],
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        payload = read_json_body(request)
        if not isinstance(payload, dict):
            raise ValidationFailed("Send a JSON object.", errors={"body": ["Expected an object."]})
        slug = payload.get("project") if isinstance(payload.get("project"), str) else None
        if "conversations" in payload:
            raw_items = payload.get("conversations")
            if isinstance(raw_items, list) and len(raw_items) > settings.INGEST_MAX_BATCH:
                raise ValidationFailed(
                    "Batch too large.",
                    errors={
                        "conversations": [f"At most {settings.INGEST_MAX_BATCH} per request; got {len(raw_items)}."]
                    },
                )
            try:
                batch = ConversationBatchIn.model_validate(payload)
            except PydanticValidationError as exc:
                raise ValidationFailed("Invalid conversations.", errors=errors_from_pydantic(exc)) from exc
            items = batch.conversations
            attach_raw_messages(items, raw_items)
        else:
            single = {k: v for k, v in payload.items() if k != "project"}
            try:
                items = [ConversationIn.model_validate(single)]
            except PydanticValidationError as exc:
                raise ValidationFailed("Invalid conversation.", errors=errors_from_pydantic(exc)) from exc
            attach_raw_messages(items, [single])
        project = services.project_resolve(principal=principal, slug=slug)
        results = services.conversations_ingest(project=project, conversations=items, principal=principal)
        body = {"results": [{"external_id": r.external_id, "id": r.id, "status": r.status} for r in results]}
        return Response(body, status=status.HTTP_201_CREATED)


class ConversationDetailApi(APIView):
    required_capability = "conversations.read"

    @extend_schema(responses={200: ConversationWithSignalsSerializer, 404: ERROR_RESPONSE}, tags=["conversations"])
    def get(self, request: Request, conversation_id: int) -> Response:
        principal = principal_of(request)
        conversation = selectors.conversation_get(
            organization=principal.organization, conversation_id=conversation_id, project=principal.project
        )
        return Response(ConversationWithSignalsSerializer(conversation).data)


class JudgeScoreAddApi(APIView):
    """Add judge scores to stored conversations by `external_id` (judges often run later)."""

    required_capability = "conversations.ingest"

    class ResultSerializer(serializers.Serializer):
        external_id = serializers.CharField()
        conversation_id = serializers.IntegerField()
        judge = serializers.CharField()
        criterion = serializers.CharField()
        status = serializers.ChoiceField(choices=["created", "duplicate"])

    @extend_schema(
        request=JudgeScoreBatchIn,
        responses={
            201: inline_serializer("JudgeScoreAddResponse", fields={"results": ResultSerializer(many=True)}),
            400: OpenApiResponse(ERROR_RESPONSE, description="Invalid score or unknown external_id."),
            413: ERROR_RESPONSE,
        },
        tags=["conversations"],
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        payload = read_json_body(request)
        if isinstance(payload, dict) and "judge_scores" not in payload and "external_id" in payload:
            payload = {"project": payload.pop("project", None), "judge_scores": [payload]}
        scores = payload.get("judge_scores") if isinstance(payload, dict) else None
        if isinstance(scores, list) and len(scores) > settings.INGEST_MAX_BATCH * 10:
            raise ValidationFailed("Batch too large.", errors={"judge_scores": ["At most 10000 per request."]})
        try:
            batch = JudgeScoreBatchIn.model_validate(payload)
        except PydanticValidationError as exc:
            raise ValidationFailed("Invalid judge scores.", errors=errors_from_pydantic(exc)) from exc
        project = services.project_resolve(principal=principal, slug=batch.project)
        results = services.judge_scores_add(project=project, scores=batch.judge_scores, principal=principal)
        body = {"results": [self.ResultSerializer(r).data for r in results]}
        return Response(body, status=status.HTTP_201_CREATED)
