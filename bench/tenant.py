"""A benchmark tenant: set up through the services (`tenant_create`), removed quickly
(`tenant_delete`: set-based DELETEs in foreign-key order, not Django's cascade collector, which
loads every related row into memory: minutes for a million items). Call after django.setup()."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

# The benches' rubric: a two-option choice and a 1-5 rating (their label bodies answer both),
# and, where a bench wants free text in the answers it reads, an optional note.
_QUESTIONS: list[dict[str, Any]] = [
    {"key": "quality", "type": "single_choice", "label": "Right?", "options": ["good", "bad"]},
    {"key": "helpfulness", "type": "rating", "label": "Helpful?", "min": 1, "max": 5},
]
_NOTES = {"key": "notes", "type": "text", "label": "Notes", "required": False}


def tenant_create(*, slug: str, name: str, notes: bool = False) -> tuple[Any, Any, Any]:
    """(organization, its project `support`, the bench rubric) through the services, as a real
    tenant would be set up."""
    from labeling import rubric
    from labeling import services as labeling
    from reviewapp import services as core

    organization = core.organization_create(slug=slug, name=name)
    project = core.project_create(organization=organization, slug="support")
    questions = [*_QUESTIONS, _NOTES] if notes else list(_QUESTIONS)
    schema = labeling.label_schema_create(
        project=project,
        rubric_in=rubric.Rubric.model_validate({"name": "Bench rubric", "questions": questions}),
        user=None,
    )
    return organization, project, schema


_STATEMENTS = [
    # Escalations first: actions protect their ladder versions.
    "DELETE FROM escalations_deliveryattempt WHERE delivery_id IN "
    "(SELECT id FROM escalations_webhookdelivery WHERE organization_id = %(org)s)",
    "DELETE FROM escalations_webhookdelivery WHERE organization_id = %(org)s",
    "DELETE FROM escalations_actionevent WHERE organization_id = %(org)s",
    "DELETE FROM escalations_vote WHERE organization_id = %(org)s",
    "DELETE FROM escalations_action WHERE organization_id = %(org)s",
    "DELETE FROM escalations_webhooksecret WHERE organization_id = %(org)s",
    "DELETE FROM escalations_policyversion WHERE organization_id = %(org)s",
    "DELETE FROM escalations_ladderversion WHERE organization_id = %(org)s",
    "DELETE FROM evaluation_calibrationpair WHERE organization_id = %(org)s",
    "DELETE FROM evaluation_calibrationstatus WHERE organization_id = %(org)s",
    "DELETE FROM evaluation_calibrationbar WHERE organization_id = %(org)s",
    "DELETE FROM labeling_itemevent WHERE organization_id = %(org)s",
    "DELETE FROM labeling_itemcomment WHERE item_id IN "
    "(SELECT id FROM labeling_queueitem WHERE organization_id = %(org)s)",
    "DELETE FROM labeling_label WHERE organization_id = %(org)s",
    "DELETE FROM labeling_assignment WHERE organization_id = %(org)s",
    "DELETE FROM labeling_queueitem WHERE organization_id = %(org)s",
    "DELETE FROM labeling_samplingcounter WHERE queue_id IN "
    "(SELECT id FROM labeling_queue WHERE organization_id = %(org)s)",
    "DELETE FROM labeling_queue_assignees WHERE queue_id IN "
    "(SELECT id FROM labeling_queue WHERE organization_id = %(org)s)",
    "DELETE FROM labeling_agreementsnapshot WHERE organization_id = %(org)s",
    "DELETE FROM labeling_queue WHERE organization_id = %(org)s",
    "UPDATE labeling_labelschema SET latest_version_id = NULL WHERE organization_id = %(org)s",
    "DELETE FROM labeling_labelschemaversion WHERE schema_id IN "
    "(SELECT id FROM labeling_labelschema WHERE organization_id = %(org)s)",
    "DELETE FROM labeling_labelschema WHERE organization_id = %(org)s",
    "DELETE FROM reviewapp_conversationtag WHERE project_id IN "
    "(SELECT id FROM reviewapp_project WHERE organization_id = %(org)s)",
    "DELETE FROM reviewapp_judgescore WHERE conversation_id IN "
    "(SELECT id FROM reviewapp_conversation WHERE organization_id = %(org)s)",
    "DELETE FROM reviewapp_feedback WHERE conversation_id IN "
    "(SELECT id FROM reviewapp_conversation WHERE organization_id = %(org)s)",
    "DELETE FROM reviewapp_conversationsignal WHERE project_id IN "
    "(SELECT id FROM reviewapp_project WHERE organization_id = %(org)s)",
    "DELETE FROM reviewapp_conversation WHERE organization_id = %(org)s",
    "DELETE FROM reviewapp_auditevent WHERE organization_id = %(org)s",
    "DELETE FROM reviewapp_apikey WHERE organization_id = %(org)s",
    "DELETE FROM reviewapp_personaltoken WHERE organization_id = %(org)s",
    "DELETE FROM reviewapp_membership WHERE organization_id = %(org)s",
    "DELETE FROM reviewapp_project WHERE organization_id = %(org)s",
    "DELETE FROM reviewapp_organization WHERE id = %(org)s",
]


def tenant_delete(slug: str) -> None:
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT id FROM reviewapp_organization WHERE slug = %s", [slug])
        row = cur.fetchone()
        if row is None:
            return
        for statement in _STATEMENTS:
            cur.execute(statement, {"org": row[0]})
