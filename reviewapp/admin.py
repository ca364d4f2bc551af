"""The Django admin, scoped: superusers see everything; staff who are an organization's admin
see that organization's rows only. Credentials are read-only here (create them with the API,
the API-keys page or `create_api_key`, so the raw key is shown once and hashed)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from reviewapp import services
from reviewapp.models import (
    ApiKey,
    AuditEvent,
    Conversation,
    Feedback,
    JudgeScore,
    Membership,
    Organization,
    PersonalToken,
    Project,
    Role,
)


def admin_organization_ids(request: HttpRequest) -> list[int]:
    return list(Membership.objects.filter(user=request.user, role=Role.ADMIN).values_list("organization_id", flat=True))


class OrganizationScopedAdmin(admin.ModelAdmin):
    organization_path = "organization"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.organization_path}__in": admin_organization_ids(request)})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Choices are scoped like the rows: otherwise a staff org admin could move a project into
        # another organization, or add themselves to one as its admin.
        if not request.user.is_superuser:
            ids = admin_organization_ids(request)
            related = db_field.related_model
            if related is Organization:
                kwargs["queryset"] = Organization.objects.filter(pk__in=ids)
            elif related in (Project, ApiKey, Conversation):
                kwargs["queryset"] = related._default_manager.filter(organization__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]


@admin.register(Project)
class ProjectAdmin(OrganizationScopedAdmin):
    list_display = ["slug", "name", "organization", "created_at"]
    list_filter = ["organization"]
    search_fields = ["slug", "name"]


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["organization", "role"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]

    # Removing someone goes through the service: their tokens for the organization are revoked
    # and the removal is audited.
    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(membership=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("organization"):
            services.membership_remove(membership=membership, actor=request.user)


@admin.register(ApiKey)
class ApiKeyAdmin(OrganizationScopedAdmin):
    list_display = ["name", "prefix", "project", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organization", "project"]
    readonly_fields = ["organization", "project", "prefix", "token_hash", "created_by", "created_at", "last_used_at"]
    exclude: list[str] = []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(PersonalToken)
class PersonalTokenAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = [
        "user",
        "organization",
        "prefix",
        "token_hash",
        "created_at",
        "last_used_at",
        "revoked_at",
        "password_fingerprint",
    ]
    actions = ["revoke"]

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalToken]) -> None:
        for token in queryset.select_related("organization"):
            services.personal_token_revoke(token=token, actor=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class JudgeScoreInline(admin.TabularInline):
    model = JudgeScore
    extra = 0


class FeedbackInline(admin.TabularInline):
    model = Feedback
    extra = 0
    exclude = ["fingerprint"]


@admin.register(Conversation)
class ConversationAdmin(OrganizationScopedAdmin):
    list_display = ["external_id", "project", "agent_version", "occurred_at", "feedback_rating"]
    list_filter = ["organization", "project", "feedback_rating", "user_rephrased"]
    search_fields = ["external_id", "end_user_id"]
    raw_id_fields = ["project", "organization", "ingested_by_key", "ingested_by_user"]
    inlines = [JudgeScoreInline, FeedbackInline]
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is slow


@admin.register(JudgeScore)
class JudgeScoreAdmin(OrganizationScopedAdmin):
    organization_path = "conversation__organization"
    list_display = ["conversation", "judge", "judge_version", "criterion", "score", "label", "confidence"]
    list_filter = ["judge", "criterion"]
    raw_id_fields = ["conversation"]
    show_full_result_count = False


@admin.register(AuditEvent)
class AuditEventAdmin(OrganizationScopedAdmin):
    list_display = ["created_at", "organization", "kind", "actor_user", "actor_api_key", "subject_type", "subject_id"]
    list_filter = ["organization", "kind"]

    # The audit trail is append-only, in the admin too.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
