"""Calibration pages (engineers and admins: `evaluation.read`).

`/evaluation/` lists judges x criteria with their status against the bar; `/evaluation/calibration/`
shows one judge and criterion (or all matching the filters): the confusion matrix, a
reliability diagram, the weekly trend with interval bands, the pass-rate estimates side by side,
the trust threshold with its sampling-rule preset, and how often each derived signal marks a
real failure. Figures come from the same `selectors.calibration_report` as the API; the charts
are inline SVG from `reviewapp/charts.py` (no script, no inline style); each figure has a
plain-words line from `reading.py`. Adding the preset to a queue goes through
`services.queue_trust_rule_add` (labeling's queue_sampling_update underneath).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from evaluation import reading, selectors, services
from labeling import selectors as labeling_selectors
from reviewapp import charts
from reviewapp import selectors as core_selectors
from reviewapp.decorators import member_required
from reviewapp.errors import ApplicationError, NotFound
from reviewapp.models import Project
from reviewapp.principal import CAPABILITIES

# The filters a page takes, each bounded like the API's (CalibrationFilterSerializer).
FILTERS = ("judge", "criterion", "judge_version")
FILTER_MAX_CHARS = 100
STATUS_WORDS = {"ok": "meets the bar", "below_bar": "below the bar", "too_few": "too few pairs"}
STATUS_CLASS = {"ok": "good", "below_bar": "bad", "too_few": "warn"}


def _project_of(projects: list[Project], value: str | None) -> Project | None:
    """The project named by `?project=` (404 when it is not the organization's), else the first."""
    if not projects:
        return None
    if not value:
        return projects[0]
    for project in projects:
        if project.slug == value:
            return project
    raise Http404("No such project.")


def _filters(request: HttpRequest) -> tuple[dict[str, str], selectors.Filters] | None:
    chosen: dict[str, str] = {}
    for name in FILTERS:
        value = request.GET.get(name)
        if value is None or (value == "" and name != "judge_version"):
            continue
        if len(value) > FILTER_MAX_CHARS or "\x00" in value:
            return None
        chosen[name] = value
    return chosen, selectors.Filters(**chosen)


def _est(estimate: dict[str, Any] | None, fmt: Any = reading.pct) -> dict[str, str]:
    estimate = estimate or {}
    interval = estimate.get("interval") or {}
    return {
        "value": fmt(estimate.get("value")),
        "interval": f"{fmt(interval['low'])} to {fmt(interval['high'])}"
        if interval.get("low") is not None and interval.get("high") is not None
        else "—",
        "n": estimate.get("n", ""),
    }


def _page_url(project: Project, group: dict[str, Any]) -> str:
    query = urlencode(
        {
            "project": project.slug,
            "judge": group["judge"],
            "criterion": group["criterion"],
            "judge_version": group["judge_version"],
        }
    )
    return f"{reverse('evaluation:calibration')}?{query}"


def _reliability_chart(group: dict[str, Any]) -> str:
    confidence = group.get("confidence") or {}
    points = []
    for b in confidence.get("reliability") or []:
        acc = b.get("accuracy") or {}
        if not b.get("n") or b.get("mean_confidence") is None or acc.get("value") is None:
            continue
        interval = acc.get("interval") or {}
        points.append(
            (
                b["mean_confidence"],
                acc["value"],
                interval.get("low"),
                interval.get("high"),
                f"confidence {b['low']:.1f} to {b['high']:.1f}: {b['n']} pairs, mean confidence "
                f"{reading.pct(b['mean_confidence'])}, right {reading.pct(acc['value'])}",
            )
        )
    return charts.reliability_diagram(
        title="Reliability diagram",
        points=points,
        summary=reading.reliability_line(group.get("confidence")),
    )


def _trend_chart(group: dict[str, Any], bar: dict[str, Any]) -> str:
    trend = group.get("trend") or []

    def triple(estimate: dict[str, Any] | None) -> tuple[float, float, float] | None:
        estimate = estimate or {}
        interval = estimate.get("interval") or {}
        if estimate.get("value") is None or interval.get("low") is None or interval.get("high") is None:
            return None
        return (estimate["value"], interval["low"], interval["high"])

    return charts.band_chart(
        title="Weekly agreement with 95% intervals",
        # Month-day keeps the last label inside the frame; each point's tooltip has the week.
        x_labels=[p["week"][5:] for p in trend][-charts.MAX_POINTS :],
        series=[
            ("kappa", [triple(p.get("cohen_kappa")) for p in trend][-charts.MAX_POINTS :]),
            ("accuracy", [triple(p.get("accuracy")) for p in trend][-charts.MAX_POINTS :]),
        ],
        y_format=lambda v: f"{v:.2f}",
        y_min=-1.0 if any(((p.get("cohen_kappa") or {}).get("value") or 0) < 0 for p in trend) else 0.0,
        reference=("kappa bar", bar["kappa"]) if bar.get("kappa") is not None else None,
        summary=reading.trend_line(trend),
    )


def _group_view(project: Project, group: dict[str, Any], bar: dict[str, Any]) -> dict[str, Any]:
    binary = group.get("binary")
    pass_rate = group.get("pass_rate")
    trust = group.get("trust")
    rule = (
        services.trust_rule(judge=group["judge"], criterion=group["criterion"], threshold=trust["threshold"])
        if trust
        else None
    )
    rates = []
    if pass_rate:
        for key, name in (
            ("judge_only", "Judge only (every judged conversation)"),
            ("rogan_gladen", "Rogan-Gladen (judge corrected by its TPR, TNR)"),
            ("ppi", "Prediction-powered (judge + human labels)"),
            ("human_only", "Human labels only (weighted)"),
        ):
            rates.append({"name": name, **_est(pass_rate.get(key))})
    return {
        "judge": group["judge"],
        "criterion": group["criterion"],
        "judge_version": group["judge_version"],
        "n": group["n"],
        "status": group["status"],
        "status_word": STATUS_WORDS.get(group["status"], group["status"]),
        "status_class": STATUS_CLASS.get(group["status"], ""),
        "url": _page_url(project, group),
        "binary": binary,
        "figures": [
            {"name": "Accuracy", **_est(binary.get("accuracy"))},
            {"name": "Cohen's kappa", **_est(binary.get("cohen_kappa"), reading.num)},
            {"name": "TPR (human passes the judge passes)", **_est(binary.get("tpr"))},
            {"name": "TNR (human fails the judge fails)", **_est(binary.get("tnr"))},
            {"name": "Prevalence (human pass rate)", **_est(binary.get("prevalence"))},
        ]
        if binary
        else [],
        "kappa": _est((binary or {}).get("cohen_kappa"), reading.num)["value"],
        "scores": group.get("scores"),
        "confidence": group.get("confidence"),
        "ece": _est((group.get("confidence") or {}).get("ece"), reading.num),
        "brier": _est((group.get("confidence") or {}).get("brier"), reading.num),
        "rates": rates,
        "method_used": (pass_rate or {}).get("method_used"),
        "trust": trust,
        "trust_agreement": _est((trust or {}).get("agreement")),
        "rule": rule,
        "rule_json": json.dumps(rule, indent=2, ensure_ascii=False) if rule else "",
        "charts": [
            mark_safe(_reliability_chart(group)),  # noqa: S308 - charts.py escapes every text it writes
            mark_safe(_trend_chart(group, bar)),  # noqa: S308 - as above
        ],
        "lines": {
            "confusion": reading.confusion_line(binary),
            "kappa": reading.kappa_line(binary),
            "reliability": reading.reliability_line(group.get("confidence")),
            "trend": reading.trend_line(group.get("trend") or []),
            "pass_rate": reading.pass_rate_line(pass_rate),
            "status": reading.status_line(group["status"], binary, bar),
            "trust": reading.trust_line(trust),
        },
    }


def _signal_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for kind, row in found["kinds"].items():
        rows.append(
            {
                "kind": kind.replace("_", " "),
                "n": row["n"],
                "fails": row["fails"],
                **{f"rate_{k}": v for k, v in _est(row["fail_rate"]).items()},
                "line": reading.signal_line(kind.replace("_", " "), row, found["all"]),
            }
        )
    return rows


@require_GET
@member_required("evaluation.read")
def index(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    projects = list(core_selectors.project_list(organization=organization))
    project = _project_of(projects, request.GET.get("project"))
    context: dict[str, Any] = {"projects": projects, "project": project, "rows": []}
    if project is not None:
        report = selectors.calibration_report(organization=organization, project=project, filters=selectors.Filters())
        context["bar"] = report["bar"]
        context["truncated"] = report["truncated"]
        context["rows"] = [
            {
                "judge": g["judge"],
                "criterion": g["criterion"],
                "judge_version": g["judge_version"],
                "n": g["n"],
                "status": g["status"],
                "status_word": STATUS_WORDS.get(g["status"], g["status"]),
                "status_class": STATUS_CLASS.get(g["status"], ""),
                "kappa": _est((g.get("binary") or {}).get("cohen_kappa"), reading.num),
                "tpr": _est((g.get("binary") or {}).get("tpr")),
                "tnr": _est((g.get("binary") or {}).get("tnr")),
                "trust": g.get("trust"),
                "url": _page_url(project, g),
            }
            for g in report["judges"]
        ]
    return render(request, "evaluation/index.html", context)


@require_GET
@member_required("evaluation.read")
def calibration(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    projects = list(core_selectors.project_list(organization=organization))
    project = _project_of(projects, request.GET.get("project"))
    parsed = _filters(request)
    if parsed is None:
        return HttpResponseBadRequest(f"judge, criterion and judge_version take at most {FILTER_MAX_CHARS} characters.")
    chosen, filters = parsed
    context: dict[str, Any] = {"projects": projects, "project": project, "chosen": chosen, "groups": []}
    if project is not None:
        report = selectors.calibration_report(organization=organization, project=project, filters=filters)
        bar = report["bar"]
        context.update(
            bar=bar,
            truncated=report["truncated"],
            groups=[_group_view(project, g, bar) for g in report["judges"]],
            signals=_signal_rows(
                selectors.signal_failure_rates(organization=organization, project=project, filters=filters)
            ),
            queues=list(
                labeling_selectors.queue_list(organization=organization)
                .filter(project=project, is_active=True)
                .order_by("name", "id")
            ),
            can_add_rule="labeling.manage" in CAPABILITIES.get(request.membership.role, frozenset()),  # type: ignore[attr-defined]
        )
    return render(request, "evaluation/calibration.html", context)


@require_POST
@member_required("labeling.manage")
def trust_rule_add(request: HttpRequest) -> HttpResponse:
    """Add the trust preset to one of the project's queues; the form's checkbox is the
    confirmation (the queue's backfill restarts under the new rules)."""
    organization = request.membership.organization  # type: ignore[attr-defined]
    projects = list(core_selectors.project_list(organization=organization))
    project = _project_of(projects, request.POST.get("project") or "-")
    back = (
        reverse("evaluation:calibration")
        + "?"
        + urlencode(
            {k: request.POST.get(k, "")[:FILTER_MAX_CHARS] for k in ("project", "judge", "criterion", "judge_version")}
        )
    )
    try:
        queue_id = int(request.POST.get("queue", ""))
    except ValueError:
        raise Http404("No such queue.") from None
    try:
        queue = labeling_selectors.queue_get(organization=organization, queue_id=queue_id)
    except NotFound:  # another organization's queue looks missing
        raise Http404("No such queue.") from None
    if project is None or queue.project_id != project.pk:
        raise Http404("No such queue.")
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the confirmation: the queue's sampling restarts under the new rules.")
        return HttpResponseRedirect(back)
    try:
        threshold = float(request.POST.get("threshold", ""))
        rate = float(request.POST.get("rate", "1") or "1")
    except ValueError:
        messages.error(request, "The threshold and rate are numbers from 0 to 1.")
        return HttpResponseRedirect(back)
    try:
        services.queue_trust_rule_add(
            queue=queue,
            judge=request.POST.get("judge", ""),
            criterion=request.POST.get("criterion") or None,
            threshold=threshold,
            rate=rate,
            actor=request.user,
        )
    except ApplicationError as exc:
        detail = "; ".join(f"{field}: {', '.join(map(str, errs))}" for field, errs in exc.errors.items())
        messages.error(request, f"{exc.message} {detail}".strip())
        return HttpResponseRedirect(back)
    messages.success(request, f"Added to the sampling rules of {queue.name}; its backfill restarts.")
    return HttpResponseRedirect(back)
