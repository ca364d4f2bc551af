"""Rubrics, queues, items, claims (assignments), labels, review and the item event trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LabelSchema(models.Model):
    """A rubric. Its content lives in immutable versions; editing adds a version."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="label_schemas")
    name = models.CharField(max_length=200)
    latest_version = models.ForeignKey(
        "LabelSchemaVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class LabelSchemaVersion(models.Model):
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    instructions = models.TextField(blank=True, default="")
    questions = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["schema_id", "version"]
        constraints = [models.UniqueConstraint(fields=["schema", "version"], name="schema_version_unique")]

    def __str__(self) -> str:
        return f"{self.schema_id} v{self.version}"


class SkipPolicy(models.TextChoices):
    OTHERS = "others", "Goes to someone else"
    SAME_PERSON_LATER = "same_person_later", "Comes back to the same person later"
    DROP = "drop", "Dropped from the queue"


class QueueKind(models.TextChoices):
    LABEL = "label", "Label conversations"
    # Two outputs side by side (labeling/pairwise.py); each item has a PairwiseItem.
    PAIRWISE = "pairwise", "Compare two outputs"


class Queue(models.Model):
    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="queues")
    schema = models.ForeignKey(LabelSchema, on_delete=models.PROTECT, related_name="queues")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=QueueKind.choices, default=QueueKind.LABEL)
    annotations_per_item = models.PositiveSmallIntegerField(default=1)
    # Disagreeing labels may pull in up to this many extra annotators before going to review.
    max_extra_annotations = models.PositiveSmallIntegerField(default=0)
    priority = models.IntegerField(default=0)
    lease_seconds = models.PositiveIntegerField(default=600)
    # Who may work it: named users if any are listed, else members with this role. Engineers
    # and admins may always work a queue of their organization.
    assignee_role = models.CharField(max_length=16, default="annotator")
    assignees = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    show_judge_scores = models.BooleanField(default=False)
    skip_policy = models.CharField(max_length=24, choices=SkipPolicy.choices, default=SkipPolicy.OTHERS)
    sampling = models.JSONField(default=list, blank=True)
    max_per_day = models.PositiveIntegerField(null=True, blank=True)
    backfill_days = models.PositiveIntegerField(default=30)
    # Backfill progress: conversations up to this id have been considered; NULL = to do.
    backfill_cursor = models.BigIntegerField(null=True, blank=True)
    backfill_done_at = models.DateTimeField(null=True, blank=True)
    # A rules change bumps the generation; a backfill step writes its cursor only if the
    # generation and the cursor it started from are unchanged (compare-and-set), so a step of
    # an old chain, or a second chain, can never overwrite newer progress.
    backfill_generation = models.PositiveIntegerField(default=0)
    # Set whenever a chain is started and by every step: the resume sweeper only restarts a
    # chain whose heartbeat is stale, so a live chain is never doubled.
    backfill_heartbeat_at = models.DateTimeField(null=True, blank=True)
    gold_rate = models.FloatField(default=0.0)
    is_active = models.BooleanField(default=True)
    # Sampling health: a queue whose rules fail is skipped (other queues and the ingest go on);
    # the failure is counted and the last one kept here, for the queue's API and page. The
    # conversations stay owed to it and are retried with backoff; those still unsampled after
    # the last retry are counted as given up.
    sampling_failures = models.PositiveIntegerField(default=0)
    sampling_error = models.TextField(blank=True, default="")
    sampling_error_at = models.DateTimeField(null=True, blank=True)
    sampling_given_up = models.PositiveIntegerField(default=0)
    sampling_given_up_at = models.DateTimeField(null=True, blank=True)
    # The budget controller (labeling/budget_controller.py): its settings as validated by
    # budget_controller.settings_parse ({} = off), the rate it set for the queue's uniform
    # rules (NULL: the settings' base rate) and the judge version that rate was decided under.
    budget_controller = models.JSONField(default=dict, blank=True)
    controlled_rate = models.FloatField(null=True, blank=True)
    controller_judge_version = models.CharField(max_length=100, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(annotations_per_item__gte=1), name="queue_overlap_positive"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="queue_gold_rate_0_1"),
        ]

    def __str__(self) -> str:
        return self.name


class ItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    NEEDS_REVIEW = "needs_review", "Needs review"
    COMPLETED = "completed", "Completed"
    DROPPED = "dropped", "Dropped"


class QueueItem(models.Model):
    """One conversation in one queue.

    `labels_done` and `leased_count` are the slot accounting the claim relies on: an item is
    claimable while labels_done + leased_count < labels_needed. Keeping them on this row (not
    only counting assignment rows) matters on PostgreSQL: a claimer that skipped past a locked
    row and comes back to it re-checks *this row's* columns, so two leases can never be handed
    out for one remaining slot.
    """

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="items")
    conversation = models.ForeignKey("reviewapp.Conversation", on_delete=models.CASCADE, related_name="queue_items")
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    priority = models.IntegerField(default=0)
    labels_needed = models.PositiveSmallIntegerField(default=1)
    labels_done = models.PositiveSmallIntegerField(default=0)
    leased_count = models.PositiveSmallIntegerField(default=0)
    extra_annotations = models.PositiveSmallIntegerField(default=0)
    # Why and how likely it was sampled, so calibration can weight labels without bias.
    source = models.CharField(max_length=16, default="rule")  # rule | backfill | manual | gold
    sampling_rule = models.CharField(max_length=100, blank=True, default="")
    sampling_strategy = models.CharField(max_length=32, blank=True, default="")
    inclusion_probability = models.FloatField(null=True, blank=True)
    stratum = models.CharField(max_length=100, blank=True, default="")
    sample_hash = models.FloatField(null=True, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_answers = models.JSONField(null=True, blank=True)
    final_answers = models.JSONField(null=True, blank=True)
    final_source = models.CharField(max_length=16, blank=True, default="")  # agreement | review | single
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "conversation"], name="queue_item_once_per_queue"),
        ]
        indexes = [
            # The claim path: open items of a queue in priority order. Partial, so completed
            # items (most of a mature queue) cost nothing to skip.
            models.Index(fields=["queue", "-priority", "id"], condition=Q(status="open"), name="queue_item_claim"),
            models.Index(fields=["queue", "status"], name="queue_item_status"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} in queue {self.queue_id}"

    @property
    def slots_free(self) -> int:
        return max(0, self.labels_needed - self.labels_done - self.leased_count)


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Leased"
    SUBMITTED = "submitted", "Labeled"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Lease expired"


class PairwiseItem(models.Model):
    """The two outputs a pairwise queue's item shows side by side (labeling/pairwise.py).

    The sides are shuffled per item with a seeded RNG and the draw is kept in `candidate_side`,
    so an answer about "A" or "B" (left or right as displayed) is mapped back to baseline or
    candidate when the results are counted. Written once, with the item."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField(QueueItem, on_delete=models.CASCADE, related_name="pairwise")
    # The shared input (a list of {"role", "content"} messages); empty: the item's conversation.
    input_messages = models.JSONField(default=list, blank=True)
    # Each side as messages for the transcript renderer (pairwise.output_messages).
    left_output = models.JSONField(default=list)
    right_output = models.JSONField(default=list)
    candidate_side = models.CharField(max_length=5, choices=[("left", "left"), ("right", "right")])
    baseline_version = models.CharField(max_length=100)
    candidate_version = models.CharField(max_length=100)
    # The dataset item's key (or the pair's own key) and its tags, the result's segments.
    key = models.CharField(max_length=64, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["item_id"]

    def __str__(self) -> str:
        return f"pair {self.key or self.item_id}: candidate on the {self.candidate_side}"


class Assignment(models.Model):
    """A person's claim on an item. One per (item, user), enforced by the database: nobody gets
    the same item twice. The lease is `lease_expires_at`; the draft survives leaving the page."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE)
    leased_at = models.DateTimeField(default=timezone.now)
    lease_expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    draft_answers = models.JSONField(default=dict, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="assignment_once_per_person")]
        indexes = [
            models.Index(
                fields=["queue", "lease_expires_at"], condition=Q(status="active"), name="assignment_live_leases"
            ),
            models.Index(fields=["user", "status"], name="assignment_user_status"),
        ]


class Label(models.Model):
    """One person's answers on one item, against the schema version they were made with."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="labels")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="labels")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    schema_version = models.ForeignKey(LabelSchemaVersion, on_delete=models.PROTECT, related_name="+")
    answers = models.JSONField(default=dict)
    client_token = models.CharField(max_length=100, blank=True, default="")
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="label_once_per_person")]
        indexes = [
            models.Index(fields=["queue", "user"], name="label_queue_user"),
            # "Has any label of this queue changed since the statistics snapshot?" is one probe
            # of this index instead of a walk over the queue's labels.
            models.Index(fields=["queue", "updated_at"], name="label_queue_updated"),
        ]


class SnapshotState(models.TextChoices):
    IDLE = "idle", "Idle"
    QUEUED = "queued", "Refresh queued"
    RUNNING = "running", "Refreshing"


class AgreementSnapshot(models.Model):
    """A queue's agreement and annotator statistics, computed in the background from the labels
    as they were at `computed_at`. One row per queue, replaced by each refresh; `state` says
    whether a refresh is queued or running (recorded before it is enqueued, so a sweeper can
    re-enqueue one a lost task dropped). `payload` is None-free JSON (labeling.agreement)."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    queue = models.OneToOneField(Queue, on_delete=models.CASCADE, related_name="agreement_snapshot")
    state = models.CharField(max_length=8, choices=SnapshotState.choices, default=SnapshotState.IDLE)
    requested_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # When the labels were read (the figures are "as of" then); None until the first refresh.
    computed_at = models.DateTimeField(null=True, blank=True)
    label_count = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"statistics of queue {self.queue_id} as of {self.computed_at}"


class ItemComment(models.Model):
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="comments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]


class ItemEvent(models.Model):
    """Append-only history of an item: sampled, labeled, skipped, lease expired, escalated to an
    extra annotator, sent to review, completed, reviewed. Skips live here, never as labels."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=32)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["item", "id"], name="item_event_item")]


class SamplingBatch(models.Model):
    """Sampling still owed to some conversations of a project: the outbox row.

    Written in the transaction that stored the conversations (or their new judge scores or
    feedback), so a broker outage can delay sampling but never lose it. The task samples the
    queues still owed one at a time, each in a transaction of its own that locks the row (SKIP
    LOCKED: two workers never sample one queue of it twice) and strikes the queue off
    `queue_ids` with the items it adds; the row is deleted once no queue is owed. A queue that
    fails stays owed: the beat sweeper runs the batch again after a backoff, and after the last
    attempt the queues still owed record the conversations as given up.
    """

    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    conversation_ids = models.JSONField(default=list)
    # The queues (ids, ascending) still owed these conversations; NULL until the first run fixes
    # them as the project's sampling queues at that moment.
    queue_ids = models.JSONField(null=True, blank=True, default=None)
    created_at = models.DateTimeField(default=timezone.now)
    # Runs that left a queue owed (a queue's rules failed, or the run itself), the last error,
    # and when the sweeper may run it again (backoff); NULL: not failed since last enqueued.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When it was last enqueued: the sweeper re-enqueues one whose message never ran.
    enqueued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["enqueued_at"], name="sampling_batch_enqueued"),
            models.Index(fields=["next_attempt_at"], name="sampling_batch_retry"),
        ]

    def __str__(self) -> str:
        return f"sampling batch {self.pk} ({len(self.conversation_ids)} conversations)"


class SamplingCounter(models.Model):
    """Per queue, budget key and day (in the project's time zone): how many conversations passed the rate (`candidates`)
    and how many the budget let in (`admitted`). admitted/candidates is the budget's thinning,
    so a label's true inclusion probability is rate * admitted / candidates for its stratum-day."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=120)
    day = models.DateField()
    candidates = models.PositiveIntegerField(default=0)
    admitted = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "key", "day"], name="sampling_counter_unique")]

    def __str__(self) -> str:
        return f"{self.queue_id}:{self.key}:{self.day}"


class ProjectBudget(models.Model):
    """A project's daily human-labeling budget across its sampling queues, paced over the
    project's day like the queue budgets. `shares` maps a queue id (as text) to the fraction of
    `daily_items` that queue may use at most (they sum to at most 1); a queue without a share
    draws only on the project total."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.OneToOneField("reviewapp.Project", on_delete=models.CASCADE, related_name="labeling_budget")
    daily_items = models.PositiveIntegerField()
    shares = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(daily_items__gte=1), name="project_budget_positive")]

    def __str__(self) -> str:
        return f"budget of project {self.project_id}: {self.daily_items} a day"


class ProjectBudgetCounter(models.Model):
    """The project's budget spent on one local day, across its queues. Locked after the queue's
    own counters (labeling/lock_objects.py), so samplers wait instead of deadlocking. Each
    queue's thinning by this budget is in its own SamplingCounter under the key "project"."""

    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    candidates = models.PositiveIntegerField(default=0)
    admitted = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="project_budget_counter_unique")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.day}"


class RateChange(models.Model):
    """A change of a queue's controlled sampling rate: by the budget controller or an admin's
    pin, with the reason in words. Append-only: the queue page shows the history."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="rate_changes")
    old_rate = models.FloatField(null=True, blank=True)
    new_rate = models.FloatField()
    reason = models.CharField(max_length=300)
    judge_version = models.CharField(max_length=100, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["queue", "-at"], name="rate_change_queue_at")]

    def __str__(self) -> str:
        return f"queue {self.queue_id}: {self.old_rate} -> {self.new_rate}"
