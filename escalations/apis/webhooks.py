"""Webhook secrets (admins) and an action's deliveries. Each view parses, calls one service or
selector, and serializes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from escalations import selectors_webhooks, services
from escalations.models import WebhookSecret
from escalations.services.webhooks import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, redacted_url
from reviewapp import selectors as core_selectors
from reviewapp import services as core_services
from reviewapp.errors import ValidationFailed
from reviewapp.fields import ColumnIntegerField
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE


class WebhookSecretOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    prefix = serializers.CharField(help_text="The secret's first characters, for recognising it.")
    state = serializers.SerializerMethodField(help_text="current, expiring (grace period), expired or revoked.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    def get_state(self, secret: WebhookSecret) -> str:
        return selectors_webhooks.secret_state(secret)


class WebhookSecretListCreateApi(APIView):
    """The organization's webhook signing secrets. POST creates a project's first secret, or
    rotates it: the new secret is answered once, and the old one keeps signing for
    `grace_seconds` (0 revokes it now)."""

    required_capability = "webhooks.manage"

    class FilterSerializer(serializers.Serializer):
        project = serializers.SlugField(required=False, max_length=64)

    class InputSerializer(serializers.Serializer):
        project = serializers.SlugField(max_length=64)
        grace_seconds = ColumnIntegerField(
            (0, MAX_GRACE_SECONDS),
            default=DEFAULT_GRACE_SECONDS,
            help_text="How long the previous secret keeps signing after a rotation; 0 revokes it now.",
        )

    class CreatedSerializer(WebhookSecretOutputSerializer):
        secret = serializers.CharField(help_text="The raw secret. Shown once; store it now.")
        rotated = serializers.BooleanField(help_text="True when a previous secret was rotated out.")

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: WebhookSecretOutputSerializer(many=True), 400: ERROR_RESPONSE},
        tags=["webhooks"],
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        project = None
        if "project" in params.validated_data:
            slug = params.validated_data["project"]
            project = core_selectors.project_get_by_slug(organization=principal.organization, slug=slug)
            if project is None:
                raise ValidationFailed("Unknown project.", errors={"project": [f"No project '{slug}' here."]})
        secrets = selectors_webhooks.webhook_secret_list(organization=principal.organization, project=project)
        return Response(WebhookSecretOutputSerializer(secrets, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: CreatedSerializer, 400: ERROR_RESPONSE, 409: ERROR_RESPONSE},
        tags=["webhooks"],
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = core_services.project_resolve(principal=principal, slug=data.validated_data["project"])
        issued, rotated = services.webhook_secret_issue(
            principal=principal, project=project, grace_seconds=data.validated_data["grace_seconds"]
        )
        body = dict(WebhookSecretOutputSerializer(issued.record).data, secret=issued.raw, rotated=rotated)
        return Response(body, status=status.HTTP_201_CREATED)


class DeliveryAttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    response_excerpt = serializers.CharField(help_text="The start of the receiver's answer (read up to 4 KB).")


class DeliverySerializer(serializers.Serializer):
    delivery_id = serializers.CharField(help_text="Sent as X-Reviewapp-Delivery; the same on every retry.")
    kind = serializers.CharField(help_text="decision (to callback_url) or tier_notification (the ladder's webhook).")
    url = serializers.SerializerMethodField(help_text="A chat webhook's URL is shown as its host only.")
    status = serializers.CharField(help_text="pending, delivered or failed (gave up).")
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    body = serializers.JSONField()
    attempt_log = DeliveryAttemptSerializer(source="attempt_rows.all", many=True)

    def get_url(self, delivery: Any) -> str:
        return redacted_url(delivery)


class ActionDeliveryListApi(APIView):
    """Every webhook delivery of an action (its decision, its tier notifications) with each
    attempt: when, how long, what came back."""

    required_capability = "actions.read"

    @extend_schema(responses={200: DeliverySerializer(many=True), 404: ERROR_RESPONSE}, tags=["actions"])
    def get(self, request: Request, action_id: int) -> Response:
        principal = principal_of(request)
        deliveries = selectors_webhooks.action_deliveries(
            organization=principal.organization, action_id=action_id, project=principal.project
        )
        return Response(DeliverySerializer(deliveries, many=True).data)
