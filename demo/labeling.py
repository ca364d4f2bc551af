"""Demo rubric and queues for the demo airline, so `make run` has labeling work to show."""

from __future__ import annotations

from labeling import rubric, services
from labeling.models import LabelSchema, Queue
from reviewapp.models import Project

DEMO_RUBRIC = {
    "name": "Support answer quality",
    "instructions": (
        "Read the whole conversation, including tool calls and their results.\n\n"
        "* **Correct** means every fact the agent stated matches the tool results and policy.\n"
        "* A refund above **$500** needs a supervisor; the agent must not promise it.\n"
        "* Point at the first assistant turn that went wrong, if any."
    ),
    "questions": [
        {
            "key": "correct",
            "type": "single_choice",
            "label": "Was the final answer correct?",
            "options": ["correct", "incorrect"],
            "judge_criterion": "correctness",
        },
        {
            "key": "policy",
            "type": "boolean",
            "label": "Did the agent follow refund and booking policy?",
            "judge_criterion": "policy_compliance",
        },
        {
            "key": "helpfulness",
            "type": "rating",
            "label": "How helpful was the agent?",
            "min": 1,
            "max": 5,
            "judge_criterion": "helpfulness",
        },
        {"key": "wrong_turn", "type": "turn", "label": "Which assistant turn went wrong?", "required": False},
        {"key": "notes", "type": "text", "label": "Notes for the team", "required": False},
    ],
}

DEMO_QUEUES = [
    {
        "name": "Daily QA sample",
        "description": "5% of traffic, every thumbs-down and rephrase, and half of the low judge scores.",
        "annotations_per_item": 2,
        "max_extra_annotations": 1,
        "sampling": (
            {"rate": 0.05, "name": "uniform-5pct"},
            {"rate": 1.0, "if": {"feedback_rating": "down"}, "name": "thumbs-down"},
            {"rate": 1.0, "if": {"user_rephrased": True}, "name": "rephrased"},
            {
                "rate": 0.5,
                "if": {"judge": "gpt-judge", "criterion": "correctness", "score_below": 0.5},
                "max_per_day": 200,
                "name": "low-judge-score",
            },
        ),
    },
    {
        "name": "Asked for a human",
        "description": "Every conversation where the customer asked for a person.",
        "priority": 10,
        "sampling": ({"rate": 1.0, "if": {"escalated_by_user": True}, "name": "asked-for-human"},),
    },
]


def labeling_demo_seed(*, project: Project) -> list[Queue]:
    """Create the demo rubric and queues if missing; their backfill samples existing traffic."""
    schema = LabelSchema.objects.filter(project=project, name=DEMO_RUBRIC["name"]).first()
    if schema is None:
        schema = services.label_schema_create(
            project=project, rubric_in=rubric.Rubric.model_validate(DEMO_RUBRIC), user=None
        )
    queues = []
    for spec in DEMO_QUEUES:
        queue = Queue.objects.filter(project=project, name=spec["name"]).first()
        if queue is None:
            queue = services.queue_create(project=project, spec=services.QueueSpec(schema=schema, **spec), user=None)
        queues.append(queue)
    return queues
