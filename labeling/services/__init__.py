"""Writes for labeling, one module per capability: rubrics, queues, sampling (and its outbox),
budgets (the project's daily budget and the budget controller),
backfill, claims, pairwise queues, gold checks, labels (with drafts and skips), review, statistics snapshots.

Each public function is keyword-only and owns its transaction. Claims and label submissions
are one short transaction each.

Callers (views, APIs, tasks, the admin, other apps) import this package and call
`services.item_claim(...)`; every public name of the modules is re-exported here. The modules
call each other directly, so a test that replaces a function or a constant patches the module
that looks it up (`labeling.services.statistics.SNAPSHOT_SYNC_MAX_LABELS`), not this package.
"""

from labeling.services.backfill import (
    BACKFILL_CHUNK,
    BACKFILL_STALE_SECONDS,
    BackfillStep,
    backfills_resume,
    queue_backfill_step,
)
from labeling.services.budgets import (
    VOLUME_DAYS,
    CalibrationProvider,
    ProjectLimit,
    budget_controller_queue_ids,
    calibration_history,
    calibration_provider_clear,
    calibration_provider_register,
    project_budget_set,
    project_limit_for,
    queue_budget_control,
    queue_budget_controller_set,
    queue_judge_criterion,
    queue_rate_in_force,
    rules_in_force,
)
from labeling.services.claims import EXPIRE_ON_CLAIM, item_claim, lease_restart, leases_expire
from labeling.services.gold import GOLD_LABELS_NEEDED, GoldItemIn, gold_items_add
from labeling.services.labels import (
    MAX_TIME_SPENT_MS,
    RESOLVE_FIELDS,
    LabelOutcome,
    draft_save,
    item_skip,
    label_submit,
)
from labeling.services.pairwise import (
    MAX_PAIRS,
    PairIn,
    PairwiseQueueSpec,
    pairwise_questions_parse,
    pairwise_queue_create,
)
from labeling.services.queues import (
    QUEUE_SETTINGS,
    ItemAddResult,
    QueueSpec,
    queue_create,
    queue_items_add,
    queue_sampling_update,
    queue_settings_update,
)
from labeling.services.review import item_comment_add, item_review
from labeling.services.rubrics import (
    label_schema_create,
    label_schema_version_check,
    label_schema_version_create,
    schema_version_resolve,
)
from labeling.services.sampling import (
    PREVIEW_CONVERSATIONS,
    SamplingPreview,
    conversations_sample,
    error_text,
    queue_sampling_failed,
    queue_sampling_given_up,
    sampling_preview,
    sampling_queues,
)
from labeling.services.sampling_outbox import (
    SAMPLING_BACKOFF_MAX_SECONDS,
    SAMPLING_BACKOFF_SECONDS,
    SAMPLING_MAX_ATTEMPTS,
    SAMPLING_RETRY_SECONDS,
    SAMPLING_SWEEP_LIMIT,
    sampling_batch_process,
    sampling_batches_due,
    sampling_retry_delay,
    sampling_work_record,
)
from labeling.services.statistics import (
    SNAPSHOT_AUTO_REFRESH,
    SNAPSHOT_STUCK_AFTER,
    SNAPSHOT_SYNC_MAX_LABELS,
    agreement_snapshot_compute,
    agreement_snapshot_current,
    agreement_snapshot_request,
    agreement_snapshots_sweep,
)

__all__ = [
    "BACKFILL_CHUNK",
    "BACKFILL_STALE_SECONDS",
    "EXPIRE_ON_CLAIM",
    "GOLD_LABELS_NEEDED",
    "MAX_PAIRS",
    "MAX_TIME_SPENT_MS",
    "PREVIEW_CONVERSATIONS",
    "QUEUE_SETTINGS",
    "RESOLVE_FIELDS",
    "SAMPLING_BACKOFF_MAX_SECONDS",
    "SAMPLING_BACKOFF_SECONDS",
    "SAMPLING_MAX_ATTEMPTS",
    "SAMPLING_RETRY_SECONDS",
    "SAMPLING_SWEEP_LIMIT",
    "SNAPSHOT_AUTO_REFRESH",
    "SNAPSHOT_STUCK_AFTER",
    "SNAPSHOT_SYNC_MAX_LABELS",
    "VOLUME_DAYS",
    "BackfillStep",
    "CalibrationProvider",
    "GoldItemIn",
    "ItemAddResult",
    "LabelOutcome",
    "PairIn",
    "PairwiseQueueSpec",
    "ProjectLimit",
    "QueueSpec",
    "SamplingPreview",
    "agreement_snapshot_compute",
    "agreement_snapshot_current",
    "agreement_snapshot_request",
    "agreement_snapshots_sweep",
    "backfills_resume",
    "budget_controller_queue_ids",
    "calibration_history",
    "calibration_provider_clear",
    "calibration_provider_register",
    "conversations_sample",
    "draft_save",
    "error_text",
    "gold_items_add",
    "item_claim",
    "item_comment_add",
    "item_review",
    "item_skip",
    "label_schema_create",
    "label_schema_version_check",
    "label_schema_version_create",
    "label_submit",
    "lease_restart",
    "leases_expire",
    "pairwise_questions_parse",
    "pairwise_queue_create",
    "project_budget_set",
    "project_limit_for",
    "queue_backfill_step",
    "queue_budget_control",
    "queue_budget_controller_set",
    "queue_create",
    "queue_items_add",
    "queue_judge_criterion",
    "queue_rate_in_force",
    "queue_sampling_failed",
    "queue_sampling_given_up",
    "queue_sampling_update",
    "queue_settings_update",
    "rules_in_force",
    "sampling_batch_process",
    "sampling_batches_due",
    "sampling_preview",
    "sampling_queues",
    "sampling_retry_delay",
    "sampling_work_record",
    "schema_version_resolve",
]
