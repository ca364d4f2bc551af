"""Reading a project's configuration as one document (provisioning/document.py has its shape)."""

from __future__ import annotations

from typing import Any

from escalations import selectors as escalation_selectors
from evaluation import selectors as evaluation_selectors
from labeling.models import LabelSchema, ProjectBudget, Queue
from provisioning import document
from reviewapp.errors import NotFound
from reviewapp.models import Organization, Project


def project_get_by_slug(*, organization: Organization, slug: str) -> Project:
    """One of the organization's projects by slug; another organization's (or none) is a 404."""
    project = Project.objects.filter(organization=organization, slug=slug).select_related("organization").first()
    if project is None:
        raise NotFound("Project not found.")
    return project


def project_list(*, organization: Organization) -> list[Project]:
    return list(Project.objects.filter(organization=organization).order_by("slug"))


def _rubrics(project: Project) -> list[dict[str, Any]]:
    schemas = LabelSchema.objects.filter(project=project, latest_version__isnull=False).select_related("latest_version")
    return [
        {
            "name": s.name,
            "instructions": s.latest_version.instructions,
            "questions": s.latest_version.questions,
        }
        for s in sorted(schemas, key=lambda s: (s.name, s.pk))
    ]


def _queues(queues: list[Queue]) -> list[dict[str, Any]]:
    return [
        {
            "name": q.name,
            "rubric": q.schema.name,
            "kind": q.kind,
            **{name: getattr(q, name) for name in document.QUEUE_FIELDS},
            "sampling": q.sampling,
            "max_per_day": q.max_per_day,
            "budget_controller": q.budget_controller or {},
        }
        for q in queues
    ]


def _budget(project: Project, queues: list[Queue]) -> dict[str, Any] | None:
    budget = ProjectBudget.objects.filter(project=project).first()
    if budget is None:
        return None
    names = {str(q.pk): q.name for q in queues}
    shares = {names[key]: value for key, value in (budget.shares or {}).items() if key in names}
    return {"daily_items": budget.daily_items, "shares": shares}


def project_config(*, organization: Organization, project: Project) -> dict[str, Any]:
    """The project's whole configuration, keyed by names: rubrics with their current versions,
    queues with their settings and sampling rules, ladders and the policy in force (current
    versions; null when none yet), the labeling budget, the calibration bar, the project's
    time zone and frustration terms."""
    queues = list(Queue.objects.filter(organization=organization, project=project).select_related("schema"))
    queues.sort(key=lambda q: (q.name, q.pk))
    ladders = escalation_selectors.ladder_list_latest(organization=organization, project=project)
    policy = escalation_selectors.policy_version_current(organization=organization, project=project)
    bar = evaluation_selectors.bar_get(organization=organization, project=project)
    return {
        "kind": document.KIND,
        "version": document.VERSION,
        "project": {"timezone": project.timezone, "frustration_terms": list(project.frustration_terms or [])},
        "rubrics": _rubrics(project),
        "queues": _queues(queues),
        "ladders": [
            {
                "name": v.name,
                "tiers": v.tiers,
                "timeout_outcome": v.timeout_outcome,
                "notify_webhook_url": v.notify_webhook_url,
            }
            for v in ladders
        ],
        "policy": {"rules": policy.rules, "default_ladder": policy.default_ladder} if policy else None,
        "budget": _budget(project, queues),
        "calibration_bar": {name: getattr(bar, name) for name in document.BAR_FIELDS},
    }


__all__ = ["project_config", "project_get_by_slug", "project_list"]
