"""The Django admin, scoped: superusers see everything; staff who are an organization's admin
see and write that organization's rows only (`reviewapp/admin_scoping.py` does it for every
ModelAdmin). The admin is another client of the services: memberships, key revocation and
tokens go through them, so audit events are written whichever way a change is made.
Credentials are never created here (use the API, the API-keys page or `create_api_key`, so
the raw key is shown once and hashed); conversations arrive through ingestion."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest

from reviewapp import selectors, services
from reviewapp.admin_scoping import (
    OrganizationScopedAdmin,
    ScopedTabularInline,
    SuperuserOnlyAdmin,
    admin_organization_ids,
)
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

__all__ = ["OrganizationScopedAdmin", "admin_organization_ids"]

User = get_user_model()


# A person may belong to several organizations, so editing them (password, staff flag,
# permissions) is for superusers; organization admins manage memberships.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class ReviewappUserAdmin(SuperuserOnlyAdmin, UserAdmin):
    pass


@admin.register(Group)
class ReviewappGroupAdmin(SuperuserOnlyAdmin, GroupAdmin):
    pass


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]

    # An organization admin renames their organization; creating and deleting tenants is
    # for superusers (`create_org`).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(Project)
class ProjectAdmin(OrganizationScopedAdmin):
    """Adds go through `project_create`, time-zone changes through `project_timezone_set`
    (audited: it moves the day the sampling budgets count in)."""

    list_display = ["slug", "name", "organization", "timezone", "created_at"]
    list_filter = ["organization"]
    search_fields = ["slug", "name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A project never changes tenant or slug (keys, URLs and ingest clients name it).
        return ["organization", "slug"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        if not change:
            saved = services.project_create(
                organization=obj.organization,
                slug=obj.slug,
                name=obj.name,
                description=obj.description,
                time_zone=obj.timezone,
            )
            obj.pk = saved.pk
            obj.created_at = saved.created_at
            return
        if "timezone" in form.changed_data:
            services.project_timezone_set(project=obj, time_zone=obj.timezone, actor=request.user)
        Project.objects.filter(pk=obj.pk).update(name=obj.name, description=obj.description)


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    """Adds, role changes and removals go through the membership services (audited)."""

    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["organization", "role"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
    fields = ["user", "organization", "role"]
    # The user is who joins; staff still pick only people of their own organizations (new
    # people are added with `add_member` or by a superuser).
    organization_unchecked_fields = ("user",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "organization"] if obj is not None else []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)

        class MembershipForm(form):  # type: ignore[misc, valid-type]
            def clean_role(self) -> str:
                # Said on the form before saving; membership_role_set refuses it anyway.
                role = self.cleaned_data["role"]
                current = self.instance
                if (
                    current.pk is not None
                    and role != Role.ADMIN
                    and selectors.membership_is_last_admin(membership=Membership.objects.get(pk=current.pk))
                ):
                    raise forms.ValidationError("This is the organization's last admin. Make someone else admin first.")
                return role

        return MembershipForm

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[str]]:
        # The last admin of an organization is shown as protected, so neither the delete page
        # nor the bulk action removes it (membership_remove would refuse it anyway).
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        last_admins = [m for m in objs if selectors.membership_is_last_admin(membership=m)]
        protected = list(protected) + [
            f"{m.user} is the last admin of {m.organization}: make someone else admin first" for m in last_admins
        ]
        return deleted, counts, perms_needed, protected

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            services.membership_role_set(membership=obj, role=obj.role, actor=request.user)
            return
        saved = services.membership_add(
            organization=obj.organization, username=obj.user.get_username(), role=obj.role, actor=request.user
        )
        obj.pk = saved.pk
        obj.created_at = saved.created_at

    # Removing someone goes through the service: their tokens for the organization are revoked
    # and the removal is audited.
    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(membership=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "organization"):
            services.membership_remove(membership=membership, actor=request.user)


@admin.register(ApiKey)
class ApiKeyAdmin(OrganizationScopedAdmin):
    list_display = ["name", "prefix", "project", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organization", "project"]
    readonly_fields = [
        "organization",
        "project",
        "prefix",
        "token_hash",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude: list[str] = []
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Keys are revoked, never deleted: conversations keep pointing at the key that sent them.
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True).select_related("organization"))
        for key in keys:
            services.api_key_revoke(key=key, actor=request.user)
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)


@admin.register(PersonalToken)
class PersonalTokenAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["organization"]
    readonly_fields = [
        "user",
        "organization",
        "prefix",
        "token_hash",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "credentials_epoch",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            services.personal_token_revoke(token=token, actor=request.user)
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)


class _ReadOnlyInline(ScopedTabularInline):
    """Judge scores and feedback arrive through the API, which also re-samples the conversation
    (a low score or a thumbs-down may match a queue's rules now): the admin only shows them."""

    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class JudgeScoreInline(_ReadOnlyInline):
    model = JudgeScore


class FeedbackInline(_ReadOnlyInline):
    model = Feedback
    exclude = ["fingerprint"]


@admin.register(Conversation)
class ConversationAdmin(OrganizationScopedAdmin):
    list_display = ["external_id", "project", "agent_version", "occurred_at", "feedback_rating"]
    list_filter = ["organization", "project", "feedback_rating", "user_rephrased"]
    search_fields = ["external_id", "end_user_id"]
    raw_id_fields = ["project", "organization", "ingested_by_key", "ingested_by_user"]
    # Tags are mirrored in ConversationTag rows by ingestion; the tenant and project are fixed.
    readonly_fields = ["organization", "project", "tags"]
    inlines = [JudgeScoreInline, FeedbackInline]
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is slow

    # Conversations arrive through POST /api/v1/conversations (ingestion), which also writes
    # their tag rows and hands them to sampling; a row added here would skip both.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(JudgeScore)
class JudgeScoreAdmin(OrganizationScopedAdmin):
    """Read-only: scores arrive through `POST /api/v1/judge-scores` (which re-samples)."""

    list_display = ["conversation", "judge", "judge_version", "criterion", "score", "label", "confidence"]
    list_filter = ["judge", "criterion"]
    raw_id_fields = ["conversation"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
