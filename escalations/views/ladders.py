"""The escalation ladders in the browser (engineers and admins: `escalations.manage`, the
capability `POST /api/v1/ladders` writes with): each ladder of a project as it stands, its
version history with what changed between consecutive versions, and an editor.

The editor posts every tier as a row of fields (escalations/ladder_form.py reads them); the
buttons that add, move and remove a tier post the form back and the page returns with the rows
changed, so it needs no script. Saving goes through `ladder_version_create`, the API's service
and validator, and makes the ladder's next version; the validator's error paths
(`tiers[1].timeout_seconds`) are shown beside their field."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from escalations import ladder_form, policies, selectors, services
from escalations.models import LadderVersion
from escalations.serializers import redacted_webhook_url
from escalations.services.policy import DEFAULT_LADDER_SPEC
from escalations.views.insight import _project_of
from reviewapp import form_rows
from reviewapp import selectors as core_selectors
from reviewapp.decorators import member_required
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project
from reviewapp.principal import CAPABILITIES, Principal

# A ladder changes a few times a year; past this many versions the API has the rest.
HISTORY = 50


def _ladder_json(version: LadderVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "tiers": version.tiers,
        "timeout_outcome": version.timeout_outcome,
        "notify_webhook_url": version.notify_webhook_url,
    }


def _version_view(version: LadderVersion) -> dict[str, Any]:
    return {
        "version": version,
        "tiers": [
            {
                "number": i + 1,
                "who": ladder_form.who_text(tier),
                "named": tier.get("role") is None,
                "timeout": ladder_form.duration_text(int(tier["timeout_seconds"])),
                "approvals": tier.get("approvals_required") or 1,
            }
            for i, tier in enumerate(version.tiers)
        ],
        "webhook_host": redacted_webhook_url(version.notify_webhook_url),
    }


def _named_warnings(organization: Any, version: LadderVersion) -> list[str]:
    """Named users who cannot decide at their tier: not members, or of a role without
    `actions.decide`. The validator checks only that names are well formed (the API takes
    them as they are), so a typo would leave a tier that only times out."""
    names = {u for tier in version.tiers for u in tier.get("users") or []}
    roles = selectors.member_roles(organization=organization, usernames=names)
    warnings = []
    for number, tier in enumerate(version.tiers, start=1):
        for user in tier.get("users") or []:
            role = roles.get(user)
            if role is None:
                warnings.append(f"Tier {number}: {user} is not a member of this organization.")
            elif "actions.decide" not in CAPABILITIES.get(role, frozenset()):
                warnings.append(f"Tier {number}: {user} is an {role}, who may not decide actions.")
    return warnings


def _url(name: str, project: Project, ladder: str | None = None) -> str:
    path = reverse(name, args=[ladder] if ladder else [])
    return f"{path}?{urlencode({'project': project.slug})}"


def _page_project(request: HttpRequest) -> tuple[Any, list[Project], Project | None]:
    organization = request.membership.organization  # type: ignore[attr-defined]
    projects = list(core_selectors.project_list(organization=organization))
    slug = request.POST.get("project") or request.GET.get("project")
    return organization, projects, _project_of(request, projects, slug)


@member_required("escalations.manage")
@require_GET
def ladder_list(request: HttpRequest) -> HttpResponse:
    organization, projects, project = _page_project(request)
    context: dict[str, Any] = {"projects": projects, "project": project, "ladders": []}
    if project is not None:
        ladders = list(selectors.ladder_list_latest(organization=organization, project=project))
        policy = selectors.policy_version_current(organization=organization, project=project)
        used: dict[str, list[str]] = {}
        if policy is not None:
            for index, rule in enumerate(policy.rules):
                if rule.get("then") == "escalate":
                    name = rule.get("ladder") or policy.default_ladder
                    used.setdefault(name, []).append(rule.get("name") or f"rule {index + 1}")
        default_ladder = policy.default_ladder if policy is not None else policies.DEFAULT_LADDER
        context.update(
            ladders=[
                {
                    **_version_view(v),
                    "url": _url("escalations:ladder-edit", project, v.name),
                    "rules": used.get(v.name, []),
                    "is_default": v.name == default_ladder,
                }
                for v in ladders
            ],
            default_missing=policies.DEFAULT_LADDER not in {v.name for v in ladders},
            default_spec=ladder_form.tier_text(DEFAULT_LADDER_SPEC["tiers"][0]),
            new_url=_url("escalations:ladder-new", project),
        )
    return render(request, "escalations/ladder_list.html", context)


def _editor(
    request: HttpRequest,
    *,
    project: Project,
    projects: list[Project],
    versions: list[LadderVersion],
    name: str,
    rows: list[dict[str, str]],
    timeout_outcome: str,
    notify_webhook_url: str,
    base_version: int | None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    history = []
    for i, version in enumerate(versions[:HISTORY]):
        older = versions[i + 1] if i + 1 < len(versions) else None
        changes = ladder_form.ladder_changes(_ladder_json(older) if older else None, _ladder_json(version))
        if older is None and version.version > 1:
            changes = ["Older versions are not shown here; GET /api/v1/ladders/<name> lists them all."]
        history.append({"version": version, "changes": changes})
    context = {
        "project": project,
        "projects": projects,
        "current": _version_view(versions[0]) if versions else None,
        "warnings": _named_warnings(project.organization, versions[0]) if versions else [],
        "history": history,
        "name": name,
        "rows": form_rows.row_views(rows, errors, "t"),
        "count": len(rows),
        "max_tiers": ladder_form.MAX_TIERS,
        "who_choices": ladder_form.WHO_CHOICES,
        "users_choice": ladder_form.USERS,
        "units": ladder_form.UNITS,
        "timeout_outcome": timeout_outcome,
        "notify_webhook_url": notify_webhook_url,
        "base_version": base_version,
        "errors": errors,
        "min_minutes": policies.MIN_TIER_TIMEOUT // 60,
        "max_days": policies.MAX_TIER_TIMEOUT // 86400,
        "max_approvals": policies.MAX_APPROVALS,
        "list_url": _url("escalations:ladders", project),
        "action_url": _url("escalations:ladder-edit", project, versions[0].name)
        if versions
        else _url("escalations:ladder-new", project),
    }
    return render(request, "escalations/ladder_edit.html", context, status=status)


def _save(
    request: HttpRequest, *, project: Project, current: LadderVersion | None, name: str, rows: list[dict[str, str]]
) -> tuple[LadderVersion | None, dict[str, list[str]]]:
    """Validate the posted ladder and save it as the next version: (version or None when
    nothing changed, errors by form field)."""
    document, errors = ladder_form.ladder_document(
        name=name,
        rows=rows,
        timeout_outcome=request.POST.get("timeout_outcome", ""),
        notify_webhook_url=request.POST.get("notify_webhook_url", ""),
    )
    if current is None and selectors.ladder_names_existing(project=project, names={document["name"]}):
        errors["name"] = ["A ladder of this name exists in this project: edit it instead."]
    if errors:
        # Saving is refused; the validator still says what else it finds, beside its field.
        try:
            policies.ladder_validate(document)
        except policies.PolicyInvalid as exc:
            errors = {**ladder_form.errors_for_form({exc.field: [exc.message]}, document), **errors}
        return None, errors
    if current is not None:
        try:
            unchanged = policies.ladder_to_json(policies.ladder_validate(document)) == _ladder_json(current)
        except policies.PolicyInvalid:
            unchanged = False  # the service below says why, with the same validator
        if unchanged:
            return None, {}
    membership = request.membership  # type: ignore[attr-defined]
    principal = Principal(organization=membership.organization, role=membership.role, user=request.user)
    try:
        return services.ladder_version_create(principal=principal, project=project, data=document), {}
    except ValidationFailed as exc:
        return None, ladder_form.errors_for_form(exc.errors or {"form": [exc.message]}, document)


def _post(
    request: HttpRequest, *, project: Project, projects: list[Project], versions: list[LadderVersion], name: str
) -> HttpResponse:
    current = versions[0] if versions else None
    rows = ladder_form.tier_rows_from_post(request.POST)
    base = request.POST.get("base_version", "")
    page = {
        "project": project,
        "projects": projects,
        "versions": versions,
        "name": name,
        "timeout_outcome": request.POST.get("timeout_outcome", ""),
        "notify_webhook_url": request.POST.get("notify_webhook_url", ""),
        "base_version": current.version if current else None,
    }
    op = request.POST.get("op", "")
    if op != "save":
        return _editor(request, rows=ladder_form.rows_apply(rows, op), **page)
    if current is not None and base != str(current.version):
        # Someone saved while this form was open: saving now would silently undo their change.
        # The form keeps what was typed; the next save (against the version shown) goes through.
        message = (
            f"Version {current.version} was saved while you were editing (see the history). "
            "Check your changes against it, then save again."
        )
        return _editor(request, rows=rows, errors={"form": [message]}, status=409, **page)
    saved, errors = _save(request, project=project, current=current, name=name, rows=rows)
    if errors:
        return _editor(request, rows=rows, errors=errors, status=400, **page)
    if saved is None:
        assert current is not None  # only an edit can change nothing
        messages.info(request, "Nothing changed: no new version was made.")
        return HttpResponseRedirect(_url("escalations:ladder-edit", project, current.name))
    messages.success(request, f"Saved ladder {saved.name} as version {saved.version}.")
    return HttpResponseRedirect(_url("escalations:ladder-edit", project, saved.name))


@member_required("escalations.manage")
@require_http_methods(["GET", "POST"])
def ladder_new(request: HttpRequest) -> HttpResponse:
    _, projects, project = _page_project(request)
    if project is None:
        raise Http404("This organization has no project yet.")
    if request.method == "POST":
        return _post(request, project=project, projects=projects, versions=[], name=request.POST.get("name", ""))
    return _editor(
        request,
        project=project,
        projects=projects,
        versions=[],
        name=request.GET.get("name", "")[: policies.MAX_LADDER_NAME],
        rows=[ladder_form.blank_tier()],
        timeout_outcome="reject",
        notify_webhook_url="",
        base_version=None,
    )


@member_required("escalations.manage")
@require_http_methods(["GET", "POST"])
def ladder_edit(request: HttpRequest, ladder_name: str) -> HttpResponse:
    organization, projects, project = _page_project(request)
    if project is None:
        raise Http404("This organization has no project yet.")
    # One more than shown: the oldest version shown is compared with the one before it.
    versions = selectors.ladder_version_history(
        organization=organization, project=project, name=ladder_name, limit=HISTORY + 1
    )
    if not versions:
        raise Http404("No ladder of this name in this project.")
    current = versions[0]
    if request.method == "POST":
        # The name is the page's, never the post's: this form edits this ladder only.
        return _post(request, project=project, projects=projects, versions=versions, name=current.name)
    return _editor(
        request,
        project=project,
        projects=projects,
        versions=versions,
        name=current.name,
        rows=[ladder_form.tier_row_from_json(t) for t in current.tiers],
        timeout_outcome=current.timeout_outcome,
        notify_webhook_url=current.notify_webhook_url,
        base_version=current.version,
    )
