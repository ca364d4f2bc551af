"""Tenant scoping for the Django admin, in one place.

A superuser sees everything. Any other staff member sees and writes only the organizations
where they are an admin: every changelist row, every foreign-key, many-to-many, raw-id and
autocomplete choice, every list-filter choice and every inline. How a model reaches its
organization is derived from its foreign keys (`organization_path`), so a model added later is
scoped without writing per-field code; users, who belong to several organizations, are in
scope when they are members of one of the admin's organizations.

Saves are checked as well: every related object must belong to the saved object's
organization, for superusers too, because a row pointing into another tenant (a queue with
another tenant's rubric, a comment on another tenant's item) leaks that tenant's data.

Every registered ModelAdmin must be an `OrganizationScopedAdmin` or a `SuperuserOnlyAdmin`;
a system check (and a test walking the registry) refuses anything else.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, reverse_field_path
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from reviewapp.models import Membership, Organization, Role

# Foreign-key hops tried when deriving how a model reaches its organization; every model so
# far needs at most two (SamplingCounter → queue → organization).
_MAX_PATH_DEPTH = 3
_OTHER_ORGANIZATION = "Belongs to another organization."


def _is_user_model(model: type[models.Model]) -> bool:
    return model is get_user_model()


@functools.cache
def organization_path(model: type[models.Model]) -> str | None:
    """The ORM path from `model` to its organization's id ("pk" for Organization itself), or
    None when the model belongs to no organization (users: several; global tables)."""
    if model is Organization:
        return "pk"
    if _is_user_model(model):
        return None
    # Breadth first, so the shortest path wins, and non-null keys before nullable ones: a
    # nullable hop would hide rows whose key is empty.
    queue: deque[tuple[type[models.Model], str, int]] = deque([(model, "", 0)])
    while queue:
        current, prefix, depth = queue.popleft()
        fields = [f for f in current._meta.get_fields() if f.concrete and (f.many_to_one or f.one_to_one)]
        fields.sort(key=lambda f: (f.null, f.name != "organization", f.name))
        for field in fields:
            if field.related_model is Organization:
                return f"{prefix}{field.name}"
        if depth + 1 >= _MAX_PATH_DEPTH:
            continue
        for field in fields:
            related = field.related_model
            if related is None or related is current or _is_user_model(related):
                continue
            queue.append((related, f"{prefix}{field.name}__", depth + 1))
    return None


def is_scoped_model(model: type[models.Model]) -> bool:
    return _is_user_model(model) or organization_path(model) is not None


def queryset_in_organizations(qs: QuerySet[Any], organization_ids: list[int]) -> QuerySet[Any]:
    """`qs` limited to rows of these organizations. A model with no way to an organization
    gives nothing: a staff member cannot pick rows nobody can say are theirs."""
    model = qs.model
    if _is_user_model(model):
        members = Membership.objects.filter(organization__in=organization_ids).values("user_id")
        return qs.filter(pk__in=members)
    path = organization_path(model)
    if path is None:
        return qs.none()
    return qs.filter(**{f"{path}__in": organization_ids})


def in_organization(obj: models.Model, organization_id: int) -> bool:
    return queryset_in_organizations(type(obj)._default_manager.filter(pk=obj.pk), [organization_id]).exists()


def admin_organization_ids(request: HttpRequest) -> list[int]:
    """The organizations where the signed-in staff member is an admin; read once per request,
    since one admin page asks for it for every field and filter."""
    if not request.user.is_authenticated:
        # The admin's login page (shown again when sign-in is throttled) asks too.
        return []
    cached = getattr(request, "_admin_organization_ids", None)
    if cached is None:
        cached = list(
            Membership.objects.filter(user=request.user, role=Role.ADMIN)
            .order_by("organization_id")
            .values_list("organization_id", flat=True)
        )
        request._admin_organization_ids = cached  # type: ignore[attr-defined]
    return cached


def _sees_everything(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


def related_queryset(model: type[models.Model], request: HttpRequest, qs: QuerySet[Any] | None = None) -> QuerySet[Any]:
    qs = model._default_manager.all() if qs is None else qs
    if _sees_everything(request):
        return qs
    return queryset_in_organizations(qs, admin_organization_ids(request))


# --- list filters ----------------------------------------------------------------------------


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """The sidebar lists only the admin's organizations' objects (Django lists every row)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        qs = related_queryset(field.related_model, request).complex_filter(field.get_limit_choices_to())
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            qs = qs.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in qs.distinct()]


class ScopedRelatedOnlyFieldListFilter(admin.RelatedOnlyFieldListFilter):
    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        pks = model_admin.get_queryset(request).distinct().values_list(f"{self.field_path}__pk", flat=True)
        qs = related_queryset(field.related_model, request).filter(pk__in=pks)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            qs = qs.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in qs]


class ScopedAllValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """For a path through a relation (`queue__name`) Django reads the values from the related
    table unscoped; read them from the admin's organizations only."""

    def __init__(
        self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str
    ) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        parent_model, _ = reverse_field_path(model, field_path)
        if parent_model is not model:
            qs = related_queryset(parent_model, request)
            self.lookup_choices = qs.distinct().order_by(field.name).values_list(field.name, flat=True)


def _scoped_list_filter(model: type[models.Model], entry: Any) -> Any:
    if isinstance(entry, str):
        field_path, filter_class = entry, None
    elif isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str):
        field_path, filter_class = entry
    else:
        return entry  # a SimpleListFilter: it chooses its own lookups (and must scope them)
    try:
        field = get_fields_from_path(model, field_path)[-1]
    except Exception:
        return entry
    if field.is_relation:
        if filter_class is None or filter_class is admin.RelatedFieldListFilter:
            return (field_path, ScopedRelatedFieldListFilter)
        if filter_class is admin.RelatedOnlyFieldListFilter:
            return (field_path, ScopedRelatedOnlyFieldListFilter)
        return entry
    plain_values = not (field.choices or isinstance(field, models.BooleanField))
    if "__" in field_path and filter_class in (None, admin.AllValuesFieldListFilter) and plain_values:
        return (field_path, ScopedAllValuesFieldListFilter)
    return entry


# --- forms -----------------------------------------------------------------------------------


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """Shows the label of a typed id only when the admin may see that object, so a rejected
    form does not echo another tenant's object name back."""

    def __init__(self, *args: Any, queryset: QuerySet[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queryset = queryset

    def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
        key = self.rel.get_related_field().name
        try:
            visible = self.queryset.filter(**{key: value}).exists()
        except (ValueError, TypeError, ValidationError):
            visible = False
        return super().label_and_url_for_value(value) if visible else ("", "")


def _organization_of(obj: models.Model | None) -> int | None:
    """The id of `obj`'s organization, following its organization path; None if unknown."""
    if obj is None:
        return None
    path = organization_path(type(obj))
    if path is None:
        return None
    if path == "pk":
        return obj.pk
    current: Any = obj
    *hops, last = path.split("__")
    for hop in hops:
        try:
            current = getattr(current, hop)
        except models.ObjectDoesNotExist:
            return None
        if current is None:
            return None
    return getattr(current, f"{last}_id", None)


class OrganizationScopedForm(forms.ModelForm):
    """Checks, on every save, that every related object belongs to the saved object's
    organization, and that this organization is one of the admin's (for staff)."""

    # Set per request by OrganizationScopingMixin: None means a superuser (no limit).
    allowed_organization_ids: list[int] | None = None
    # An inline row of a parent being added has no organization yet; the parent form checks
    # the parent's, and the row's choices are already limited to the admin's organizations.
    require_organization = True
    # Relations that are not checked against the organization on save (their choices are
    # still scoped): a membership's user is the person being brought into it.
    unchecked_fields: tuple[str, ...] = ()

    def _related_fields(self) -> list[models.Field[Any, Any]]:
        opts = self._meta.model._meta
        return [
            f
            for f in opts.get_fields()
            if f.concrete and f.is_relation and (f.many_to_one or f.one_to_one or f.many_to_many)
        ]

    def _target_organization(self) -> tuple[int | None, str | None]:
        """The saved object's organization and the field that decides it: the first hop of
        its organization path (from the form or the stored row), else the related objects
        the form names."""
        model = self._meta.model
        path = organization_path(model)
        data = self.cleaned_data
        if path == "pk":
            return self.instance.pk, None
        if path is not None:
            first = path.split("__")[0]
            if first in data:
                value = data[first]
                if value is None:
                    return None, first
                if isinstance(value, Organization):
                    return value.pk, first
                return _organization_of(value), first
            stored = _organization_of(self.instance)
            if stored is not None:
                return stored, None
        for field in self._related_fields():
            value = data.get(field.name)
            if field.many_to_many or value is None or _is_user_model(field.related_model):
                continue
            organization_id = _organization_of(value)
            if organization_id is not None:
                return organization_id, field.name
        return None, None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        path = organization_path(self._meta.model)
        if path is not None and path.split("__")[0] in self.errors:
            return data  # the field that names the organization already says what is wrong
        organization_id, deciding_field = self._target_organization()
        allowed = self.allowed_organization_ids
        if organization_id is None:
            if allowed is not None and self.require_organization and organization_path(self._meta.model) is not None:
                self.add_error(deciding_field, "Choose an organization you administer.")
            return data
        if allowed is not None and organization_id not in allowed:
            self.add_error(deciding_field, _OTHER_ORGANIZATION)
            return data
        # A row never changes organization: the rows that point at it (a project's
        # conversations, keys and queues) carry the old one. The instance is still the stored
        # row here; the form's values are copied onto it after clean().
        stored = _organization_of(self.instance) if self.instance.pk is not None else None
        if stored is not None and stored != organization_id:
            self.add_error(deciding_field, "Cannot move to another organization.")
            return data
        for field in self._related_fields():
            if field.name not in data or field.name == deciding_field or field.name in self.errors:
                continue
            if field.name in self.unchecked_fields:
                continue
            value = data[field.name]
            if value is None or not is_scoped_model(field.related_model):
                continue
            objects = list(value) if field.many_to_many else [value]
            foreign = [obj for obj in objects if not in_organization(obj, organization_id)]
            if foreign:
                names = ", ".join(str(obj) for obj in foreign) if field.many_to_many else ""
                message = f"Not in this organization: {names}." if names else _OTHER_ORGANIZATION
                self.add_error(field.name, message)
        return data


class OrganizationScopingMixin:
    """Queryset, field-choice and save scoping shared by ModelAdmins and inlines.

    `organization_path` may be set on the admin class; by default it is derived from the
    model's foreign keys."""

    organization_path: str | None = None
    organization_unchecked_fields: tuple[str, ...] = ()
    form = OrganizationScopedForm

    def _organization_path(self) -> str | None:
        return self.organization_path or organization_path(self.model)  # type: ignore[attr-defined]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)  # type: ignore[misc]
        if _sees_everything(request):
            return qs
        path = self._organization_path()
        if path is None:
            return queryset_in_organizations(qs, admin_organization_ids(request))
        return qs.filter(**{f"{path}__in": admin_organization_ids(request)})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not _sees_everything(request):
            base = kwargs.get("queryset")
            if base is None:
                base = self.get_field_queryset(kwargs.get("using"), db_field, request)  # type: ignore[attr-defined]
            kwargs["queryset"] = related_queryset(db_field.related_model, request, base)
            if db_field.name in self.raw_id_fields:  # type: ignore[attr-defined]
                kwargs["widget"] = ScopedRawIdWidget(
                    db_field.remote_field,
                    self.admin_site,  # type: ignore[attr-defined]
                    using=kwargs.get("using"),
                    queryset=kwargs["queryset"],
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not _sees_everything(request):
            base = kwargs.get("queryset")
            if base is None:
                base = self.get_field_queryset(kwargs.get("using"), db_field, request)  # type: ignore[attr-defined]
            kwargs["queryset"] = related_queryset(db_field.related_model, request, base)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def _scoped_form(self, form: type[forms.ModelForm], request: HttpRequest, **attrs: Any) -> type[forms.ModelForm]:
        if not issubclass(form, OrganizationScopedForm):
            form = type(form.__name__, (OrganizationScopedForm, form), {})
        allowed = None if _sees_everything(request) else admin_organization_ids(request)
        attrs.setdefault("unchecked_fields", self.organization_unchecked_fields)
        return type(form.__name__, (form,), {"allowed_organization_ids": allowed, **attrs})


class OrganizationScopedAdmin(OrganizationScopingMixin, admin.ModelAdmin):
    """The base of every ModelAdmin that shows tenant rows."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        return self._scoped_form(super().get_form(request, obj, change, **kwargs), request)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        return self._scoped_form(super().get_changelist_form(request, **kwargs), request)

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [_scoped_list_filter(self.model, entry) for entry in super().get_list_filter(request)]

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Staff who administer no organization would only ever see empty pages.
        if not _sees_everything(request) and not admin_organization_ids(request):
            return False
        return super().has_module_permission(request)


class OrganizationScopedInlineMixin(OrganizationScopingMixin):
    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]
        allowed = None if _sees_everything(request) else admin_organization_ids(request)

        class ScopedFormSet(formset):  # type: ignore[misc, valid-type]
            def add_fields(self, form: forms.Form, index: int | None) -> None:
                super().add_fields(form, index)
                # Django offers every row of the table as a form's hidden id; rows are looked
                # up in the parent's rows anyway, but the choices should say the same.
                field = form.fields.get(self.model._meta.pk.name)
                if allowed is not None and isinstance(field, forms.ModelChoiceField):
                    field.queryset = queryset_in_organizations(field.queryset, allowed)

        ScopedFormSet.__name__ = formset.__name__
        ScopedFormSet.form = self._scoped_form(formset.form, request, require_organization=obj is not None)
        return ScopedFormSet


class ScopedTabularInline(OrganizationScopedInlineMixin, admin.TabularInline):
    pass


class ScopedStackedInline(OrganizationScopedInlineMixin, admin.StackedInline):
    pass


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """For models that belong to no single organization (people, groups): a user's password,
    staff flag and permissions govern every organization they belong to, so only a superuser
    changes them; organization admins manage memberships instead."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _sees_everything(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _sees_everything(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _sees_everything(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _sees_everything(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _sees_everything(request)


def unscoped_admin_problems(site: admin.AdminSite) -> list[str]:
    """Registered admins (and their inlines) that neither scope to organizations nor are
    superuser-only; the system check and a test both use this."""
    problems = []
    for model, model_admin in site._registry.items():
        if isinstance(model_admin, SuperuserOnlyAdmin):
            continue
        if not isinstance(model_admin, OrganizationScopedAdmin):
            problems.append(f"{model._meta.label}: {type(model_admin).__name__} is not an OrganizationScopedAdmin")
            continue
        if model_admin._organization_path() is None:
            problems.append(f"{model._meta.label}: no way from this model to an organization")
        for inline in model_admin.inlines:
            if not issubclass(inline, OrganizationScopingMixin):
                problems.append(f"{model._meta.label}: inline {inline.__name__} is not scoped")
    return problems


@checks.register(checks.Tags.admin)
def check_admin_scoping(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            problem,
            hint="Inherit reviewapp.admin_scoping.OrganizationScopedAdmin (or SuperuserOnlyAdmin).",
            id="reviewapp.E001",
        )
        for problem in unscoped_admin_problems(admin.site)
    ]
