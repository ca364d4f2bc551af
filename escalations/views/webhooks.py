"""The webhook secrets page (admins): each project's secrets, and a button that creates or
rotates one and shows the new secret once. Same services as `POST /api/v1/webhook-secrets`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from escalations import selectors_webhooks, services
from escalations.services.webhooks import DEFAULT_GRACE_SECONDS
from reviewapp import selectors as core_selectors
from reviewapp.decorators import member_required
from reviewapp.principal import Principal

GRACE_CHOICES = [
    (str(DEFAULT_GRACE_SECONDS), "24 hours (the default)"),
    ("3600", "1 hour"),
    ("604800", "7 days"),
    ("0", "no grace: revoke the old secret now"),
]


class SecretIssueForm(forms.Form):
    project = forms.ChoiceField()
    grace_seconds = forms.TypedChoiceField(choices=GRACE_CHOICES, coerce=int, initial=str(DEFAULT_GRACE_SECONDS))


@member_required("webhooks.manage")
@require_http_methods(["GET", "POST"])
def webhook_settings(request: HttpRequest) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    organization = membership.organization
    projects = list(core_selectors.project_list(organization=organization))
    form = SecretIssueForm(request.POST or None)
    form.fields["project"].choices = [(p.slug, p.name) for p in projects]
    issued = rotated = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            project = next(p for p in projects if p.slug == form.cleaned_data["project"])
            principal = Principal(organization=organization, role=membership.role, user=request.user)
            issued, rotated = services.webhook_secret_issue(
                principal=principal, project=project, grace_seconds=form.cleaned_data["grace_seconds"]
            )
        else:
            status = 400
    now = timezone.now()
    by_project: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for secret in selectors_webhooks.webhook_secret_list(organization=organization):
        by_project[secret.project_id].append({"secret": secret, "state": selectors_webhooks.secret_state(secret, now)})
    rows = [
        {
            "project": p,
            "secrets": by_project.get(p.pk, []),
            "has_current": any(s["state"] == "current" for s in by_project.get(p.pk, [])),
        }
        for p in projects
    ]
    context = {"rows": rows, "issued": issued, "rotated": rotated, "form": form, "grace_choices": GRACE_CHOICES}
    return render(request, "escalations/webhook_settings.html", context, status=status)
