"""Browser pages: the organization's projects, and "new project from…" (admins): a new
project configured like an existing one, or by a pasted document, after seeing the diff."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from provisioning import selectors, services
from reviewapp import validation
from reviewapp.decorators import member_required
from reviewapp.errors import ApplicationError
from reviewapp.principal import Principal

MAX_DOCUMENT_CHARS = 1_000_000


class NewProjectForm(forms.Form):
    source = forms.ChoiceField(required=False, label="Copy the configuration of")
    document = forms.CharField(
        required=False,
        max_length=MAX_DOCUMENT_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        label="or paste a configuration document (JSON)",
    )
    slug = forms.SlugField(max_length=64, label="New project's slug")
    name = forms.CharField(max_length=200, required=False, label="Name")


def _principal(request: HttpRequest) -> Principal:
    membership = request.membership  # type: ignore[attr-defined]
    return Principal(organization=membership.organization, role=membership.role, user=request.user)


@member_required("projects.manage")
@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    return render(
        request, "provisioning/project_list.html", {"projects": selectors.project_list(organization=organization)}
    )


def _document(form: NewProjectForm, organization: Any) -> Any:
    """The document to apply: the chosen project's configuration, else the pasted one."""
    source = form.cleaned_data.get("source")
    if source:
        project = selectors.project_get_by_slug(organization=organization, slug=source)
        return selectors.project_config(organization=organization, project=project)
    text = form.cleaned_data.get("document") or ""
    if not text.strip():
        form.add_error("source", "Pick a project or paste a document.")
        return None
    try:
        return validation.json_loads(text)
    except (ApplicationError, ValueError) as exc:
        form.add_error("document", f"Not a JSON document: {getattr(exc, 'message', exc)}")
        return None


@member_required("projects.manage")
@require_http_methods(["GET", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    principal = _principal(request)
    organization = principal.organization
    projects = selectors.project_list(organization=organization)
    form = NewProjectForm(request.POST or None, initial={"source": request.GET.get("from", "")})
    form.fields["source"].choices = [("", "— a pasted document —")] + [
        (p.slug, f"{p.name} ({p.slug})") for p in projects
    ]
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        data = _document(form, organization)
        if data is not None:
            create = request.POST.get("action") == "create"
            try:
                project, result = services.project_create_from_config(
                    principal=principal,
                    organization=organization,
                    slug=form.cleaned_data["slug"],
                    name=form.cleaned_data["name"],
                    data=data,
                    dry_run=not create,
                )
            except ApplicationError as exc:
                context["errors"] = sorted((str(k), "; ".join(map(str, v))) for k, v in exc.errors.items())
                context["message"] = exc.message
            else:
                if project is not None:
                    return redirect(f"{reverse('provisioning:project-list')}?created={project.slug}")
                context["result"] = result
                context["document_json"] = json.dumps(data, indent=2)[:MAX_DOCUMENT_CHARS]
    status = 400 if request.method == "POST" and ("errors" in context or form.errors) else 200
    return render(request, "provisioning/project_new.html", context, status=status)
