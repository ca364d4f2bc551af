"""The escalations dashboard and the policy page (engineers and admins: `escalations.manage`).

The dashboard is server-rendered: figures from `selectors_insight` (GROUP BY queries), charts
as inline SVG from `charts.py` (no script, no inline style), tables beside them. The policy page
shows the policy in force, takes a draft in a textarea, replays it over past actions (the same
`policy_simulate` as `POST /api/v1/policy/simulate`) and saves it as the next version through
`policy_version_create`, the service the API uses; errors name the field (`rules[1].then`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from escalations import selectors, selectors_insight, services
from escalations.simulation import NO_RULE
from reviewapp import charts, validation
from reviewapp import selectors as core_selectors
from reviewapp.decorators import member_required
from reviewapp.errors import ValidationFailed
from reviewapp.models import Project
from reviewapp.principal import Principal

# A draft is a few hundred rules at most (policies.MAX_RULES); its text stays well under this.
DRAFT_MAX_CHARS = 256_000
EMPTY_POLICY = {"rules": [], "default_ladder": "default"}


def _project_of(request: HttpRequest, projects: list[Project], value: str | None) -> Project | None:
    """The project named by `?project=` (404 when it is not the organization's), else the first."""
    if not projects:
        return None
    if not value:
        return projects[0]
    for project in projects:
        if project.slug == value:
            return project
    raise Http404("No such project.")


def _pct(value: float | None) -> str:
    return "—" if value is None else charts.percent(value)


def _secs(value: float | None) -> str:
    return "—" if value is None else charts.duration(value)


def _table_rows(rows: list[dict[str, Any]], *, label: Any = None) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        key = row["key"]
        out.append(
            {
                "label": label(key) if label else key,
                "total": row["total"],
                "auto_approval": _pct(row["auto_approval_rate"]),
                "escalation": _pct(row["escalation_rate"]),
                "decided": row["human_decided"],
                "overrides": row["human_overrides"],
                "override": _pct(row["override_rate"]),
                "p50": _secs(row["decision_p50"]),
                "p90": _secs(row["decision_p90"]),
            }
        )
    return out


def _charts(figures: dict[str, Any]) -> list[str]:
    days = figures["by_day"]
    labels = [day["key"].strftime("%m-%d") for day in days]
    return [
        mark_safe(  # noqa: S308 - charts.py escapes every text it writes
            charts.stacked_bar_chart(
                title="Actions per day",
                x_labels=labels,
                series=[
                    ("auto-approved", [d["auto_approved"] for d in days]),
                    ("auto-rejected", [d["auto_rejected"] for d in days]),
                    ("escalated", [d["escalated"] for d in days]),
                ],
                summary=f"{figures['totals']['total']} actions over {figures['days']} days",
            )
        ),
        mark_safe(  # noqa: S308 - as above
            charts.line_chart(
                title="Rates per day",
                x_labels=labels,
                series=[
                    ("auto-approval", [d["auto_approval_rate"] for d in days]),
                    ("escalation", [d["escalation_rate"] for d in days]),
                    ("override (of decided)", [d["override_rate"] for d in days]),
                ],
                y_format=charts.percent,
                y_max=1.0,
            )
        ),
        mark_safe(  # noqa: S308 - as above
            charts.line_chart(
                title="Time to a person's decision",
                x_labels=labels,
                series=[("median", [d["decision_p50"] for d in days]), ("p90", [d["decision_p90"] for d in days])],
                y_format=charts.duration,
                nice=charts.nice_duration_max,
            )
        ),
    ]


def _envelope_rows(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for env in found:
        threshold = env["threshold"]
        rows.append(
            {
                "action": env["action"],
                "decisions": env["decisions"],
                "threshold": threshold,
                "wilson_low": _pct(threshold["wilson_low"]) if threshold else "—",
                "traffic_share": _pct(env["traffic_share"]),
                "spared": env["escalations_spared"],
                "samples_needed": env["samples_needed"],
                "rule": _policy_text(env["suggested_rule"]) if env["suggested_rule"] else "",
                "bins": [
                    {
                        "range": "no confidence"
                        if b["confidence_from"] is None
                        else f"{b['confidence_from']:.1f} to {b['confidence_to']:.1f}",
                        "n": b["n"],
                        "rate": _pct(b["approval_rate"]),
                        "interval": "—"
                        if b["wilson_low"] is None
                        else f"{_pct(b['wilson_low'])} to {_pct(b['wilson_high'])}",
                    }
                    for b in env["reliability"]
                    if b["n"]
                ],
            }
        )
    return rows


@member_required("escalations.manage")
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    projects = list(core_selectors.project_list(organization=organization))
    project = _project_of(request, projects, request.GET.get("project"))
    context: dict[str, Any] = {"projects": projects, "project": project}
    if project is not None:
        figures = selectors_insight.dashboard_figures(organization=organization, project=project)
        totals = figures["totals"]
        context.update(
            figures=figures,
            totals={
                "total": totals["total"],
                "auto_approval": _pct(totals["auto_approval_rate"]),
                "escalation": _pct(totals["escalation_rate"]),
                "override": _pct(totals["override_rate"]),
                "decided": totals["human_decided"],
            },
            charts=_charts(figures),
            by_action=_table_rows(figures["by_action"]),
            by_rule=_table_rows(figures["by_rule"], label=lambda key: key or NO_RULE),
            by_version=_table_rows(figures["by_agent_version"], label=lambda key: key or "(none given)"),
            stamps=[
                {**row, "rate": _pct(row["approval_rate"]), "median": _secs(row["median_seconds"])}
                for row in selectors_insight.rubber_stamp_approvers(organization=organization, project=project)
            ],
            envelopes=_envelope_rows(selectors_insight.action_envelopes(organization=organization, project=project)),
            stamp_rules={
                "decisions": selectors_insight.RUBBER_STAMP_MIN_DECISIONS,
                "rate": _pct(selectors_insight.RUBBER_STAMP_APPROVAL_RATE),
                "seconds": int(selectors_insight.RUBBER_STAMP_MEDIAN_SECONDS),
            },
        )
    return render(request, "escalations/dashboard.html", context)


def _policy_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def _draft_parse(text: str) -> Any:
    if len(text) > DRAFT_MAX_CHARS:
        raise ValidationFailed("Draft too long.", errors={"draft": [f"At most {DRAFT_MAX_CHARS:,} characters."]})
    if not text.strip():
        raise ValidationFailed("Write a policy.", errors={"draft": ["The draft is empty."]})
    try:
        return validation.json_loads(text)
    except validation.InputError as exc:
        raise ValidationFailed("The draft is not valid JSON.", errors={"draft": [exc.message]}) from exc
    except ValueError as exc:
        raise ValidationFailed("The draft is not valid JSON.", errors={"draft": [str(exc)[:300]]}) from exc


def _report_view(report: dict[str, Any]) -> dict[str, Any]:
    """The simulation report as the template shows it."""
    selection = report["selection"]
    return {
        **report,
        "first": dt.datetime.fromisoformat(selection["first_created_at"]) if selection["first_created_at"] else None,
        "last": dt.datetime.fromisoformat(selection["last_created_at"]) if selection["last_created_at"] else None,
        "rule_rows": [{**row, "label": row["rule"]} for row in report["by_rule"]],
    }


@member_required("escalations.manage")
@require_http_methods(["GET", "POST"])
def policy_page(request: HttpRequest) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    organization = membership.organization
    projects = list(core_selectors.project_list(organization=organization))
    project = _project_of(request, projects, request.POST.get("project") or request.GET.get("project"))
    context: dict[str, Any] = {"projects": projects, "project": project, "errors": {}, "report": None}
    if project is None:
        return render(request, "escalations/policy.html", context)
    current = selectors.policy_version_current(organization=organization, project=project)
    current_json = (
        {"rules": current.rules, "default_ladder": current.default_ladder} if current is not None else EMPTY_POLICY
    )
    context.update(
        current=current,
        current_text=_policy_text(current_json),
        draft=request.POST.get("draft", _policy_text(current_json)),
        last=request.POST.get("last", str(selectors_insight.DEFAULT_REPLAY)),
        saved=request.GET.get("saved"),
        max_replay=selectors_insight.MAX_REPLAY,
    )
    status = 200
    if request.method == "POST":
        try:
            data = _draft_parse(context["draft"])
            if request.POST.get("do") == "save":
                principal = Principal(organization=organization, role=membership.role, user=request.user)
                version = services.policy_version_create(principal=principal, project=project, data=data)
                query = urlencode({"project": project.slug, "saved": version.version})
                return HttpResponseRedirect(f"{reverse('escalations:policy')}?{query}")
            last = validation.parse_int(context["last"], field="last", min=1, max=selectors_insight.MAX_REPLAY)
            policy = selectors_insight.policy_draft_validate(project=project, data=data, field="")
            report = selectors_insight.policy_simulate(
                organization=organization,
                project=project,
                policy=policy,
                selection=selectors_insight.ReplaySelection(last=last),
            )
            context["report"] = _report_view(report)
        except ValidationFailed as exc:
            context["errors"] = exc.errors or {"draft": [exc.message]}
            context["error_message"] = exc.message
            status = 400
    return render(request, "escalations/policy.html", context, status=status)
