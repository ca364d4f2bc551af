"""Calibration: judge/human pairs, the per-project bar, and the last status seen per judge."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class PairKind(models.TextChoices):
    JUDGE = "judge", "Judge score vs final label"
    AGENT_ACTION = "agent_action", "Agent confidence vs a person's decision"


class CalibrationPair(models.Model):
    """One machine verdict next to the human answer it is measured against.

    `judge`: a judge score on a conversation and the final answer to the rubric question whose
    `judge_criterion` names the score's criterion, with the item's inclusion probability (so
    estimates can be weighted back to the whole traffic). `agent_action`: the agent's
    confidence in an escalated action and a person's decision on it (`judge` is "agent",
    `judge_version` the agent version, `criterion` the action name, `human_pass` approved).
    Rows are derived and rewritten by evaluation.services; nothing else writes them.
    """

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=PairKind.choices, default=PairKind.JUDGE)
    conversation = models.ForeignKey(
        "reviewapp.Conversation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    queue_item = models.ForeignKey(
        "labeling.QueueItem", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Not a foreign key: evaluation may not depend on the escalations app (docs/architecture.md).
    action_id = models.BigIntegerField(null=True, blank=True)
    judge = models.CharField(max_length=100)
    judge_version = models.CharField(max_length=100, blank=True, default="")
    criterion = models.CharField(max_length=100)
    question_key = models.CharField(max_length=64, blank=True, default="")
    judge_score = models.FloatField(null=True, blank=True)
    judge_label = models.CharField(max_length=100, blank=True, default="")
    judge_confidence = models.FloatField(null=True, blank=True)
    judge_pass = models.BooleanField(null=True, blank=True)
    human_pass = models.BooleanField()
    human_answer = models.JSONField(null=True, blank=True)
    # The human answer as a number where it is one (ratings), for score agreement.
    human_score = models.FloatField(null=True, blank=True)
    inclusion_probability = models.FloatField(null=True, blank=True)
    agent_version = models.CharField(max_length=100, blank=True, default="")
    labeled_at = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            # Full (not partial) unique constraints, so INSERT … ON CONFLICT can name them on both
            # databases; NULLs are distinct, so each only binds its own kind.
            models.UniqueConstraint(
                fields=["queue_item", "judge", "judge_version", "criterion"], name="calibration_pair_item_unique"
            ),
            models.UniqueConstraint(fields=["action_id"], name="calibration_pair_action_unique"),
            models.CheckConstraint(
                condition=(Q(kind="judge") & Q(queue_item__isnull=False))
                | (Q(kind="agent_action") & Q(action_id__isnull=False)),
                name="calibration_pair_kind_subject",
            ),
        ]
        indexes = [
            # The calibration API: a project's pairs of one kind, filtered by judge and criterion,
            # then version and time.
            models.Index(
                fields=["project", "kind", "judge", "criterion", "judge_version", "labeled_at"],
                name="calibration_pair_filter",
            ),
            models.Index(fields=["project", "kind", "labeled_at"], name="calibration_pair_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.judge}@{self.judge_version} {self.criterion}"


class CalibrationBar(models.Model):
    """What a project asks of its judges. Absent: the defaults below."""

    DEFAULT_KAPPA = 0.6
    DEFAULT_TPR = 0.9
    DEFAULT_TNR = 0.9

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.OneToOneField("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    kappa = models.FloatField(default=DEFAULT_KAPPA)
    tpr = models.FloatField(default=DEFAULT_TPR)
    tnr = models.FloatField(default=DEFAULT_TNR)
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kappa__gte=0)
                & Q(kappa__lte=1)
                & Q(tpr__gte=0)
                & Q(tpr__lte=1)
                & Q(tnr__gte=0)
                & Q(tnr__lte=1),
                name="calibration_bar_0_1",
            )
        ]

    def __str__(self) -> str:
        return f"bar of project {self.project_id}"


class CalibrationSnapshot(models.Model):
    """A judge's agreement with people on one day, per (project, judge, criterion, version):
    the pairs labelled in the week ending with that day, figured by evaluation.stats against
    the project's bar as it stood. Written by the daily beat job (calibration_snapshots_take),
    read by the budget controller as its history and by the API as a cheap trend."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    judge = models.CharField(max_length=100)
    judge_version = models.CharField(max_length=100, blank=True, default="")
    criterion = models.CharField(max_length=100)
    day = models.DateField()
    n = models.PositiveIntegerField()
    status = models.CharField(max_length=16)
    # Whether every checked figure's interval lies above its bar (stats.bar_cleared).
    cleared = models.BooleanField(default=False)
    figures = models.JSONField(default=dict)  # accuracy, cohen_kappa, tpr, tnr: value, low, high
    bar = models.JSONField(default=dict)  # kappa, tpr, tnr
    # The tightest checked figure: its interval's lower bound and its bar (None when unknown).
    lower = models.FloatField(null=True, blank=True)
    lower_bar = models.FloatField(null=True, blank=True)
    last_labeled_at = models.DateTimeField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["day", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "judge", "criterion", "judge_version", "day"], name="calibration_snapshot_unique"
            )
        ]
        indexes = [
            # The controller's history: one judge and criterion of a project over a range of days.
            models.Index(fields=["project", "judge", "criterion", "day"], name="calibration_snapshot_history"),
        ]

    def __str__(self) -> str:
        return f"{self.judge}@{self.judge_version} {self.criterion} {self.day}: {self.status}"


class CalibrationStatus(models.Model):
    """The last status seen per (project, judge, version, criterion), so a drop to below_bar is
    told once per change, not on every read. The alert of a change is claimed (alert_claimed_at,
    a lease) before it is sent and marked sent (notified_at) after a 2xx."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    judge = models.CharField(max_length=100)
    judge_version = models.CharField(max_length=100, blank=True, default="")
    criterion = models.CharField(max_length=100)
    status = models.CharField(max_length=16)
    changed_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    alert_claimed_at = models.DateTimeField(null=True, blank=True)
    alert_attempts = models.PositiveSmallIntegerField(default=0)
    alert_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "judge", "judge_version", "criterion"], name="calibration_status_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.judge}@{self.judge_version} {self.criterion}: {self.status}"


# --- Golden datasets -------------------------------------------------------------------------
#
# A Dataset holds a mutable working set of items (DatasetItem). Freezing copies them into an
# immutable, numbered DatasetVersion (DatasetVersionItem rows, never updated afterwards); release
# candidates are scored against a version (DatasetRun, DatasetRunResult). Items are addressed by
# a stable `key`, the same in every version, which runs and exports call `item_id`.


class GateMode(models.TextChoices):
    # Observed rates against the thresholds: what teams do today.
    OBSERVED = "observed", "Observed rates"
    # The Wilson lower bound must clear the target, and there must be enough critical items for
    # a zero-failure bound to reach the critical threshold.
    CONFIDENT = "confident", "Confident (lower bound)"


class Split(models.TextChoices):
    TRAIN = "train", "train"
    DEV = "dev", "dev"
    TEST = "test", "test"


class Dataset(models.Model):
    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    gate_pass_rate = models.FloatField(default=0.95)
    gate_critical_pass_rate = models.FloatField(default=1.0)
    gate_mode = models.CharField(max_length=16, choices=GateMode.choices, default=GateMode.OBSERVED)
    # Two-sided level of the intervals the confident gate uses.
    gate_confidence = models.FloatField(default=0.95)
    # Also require the candidate to be "not worse than the version tagged prod" by the interval of
    # a human pairwise comparison of the two agent versions on this dataset.
    gate_require_not_worse = models.BooleanField(default=False)
    # Rules that promote final labels into the working set by themselves (validated data).
    promotion_rules = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_project_name_unique"),
            models.CheckConstraint(
                condition=Q(gate_pass_rate__gte=0)
                & Q(gate_pass_rate__lte=1)
                & Q(gate_critical_pass_rate__gte=0)
                & Q(gate_critical_pass_rate__lte=1)
                & Q(gate_confidence__gt=0)
                & Q(gate_confidence__lt=1),
                name="dataset_gate_bounds",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetItemFields(models.Model):
    """What an item is, shared by the working set and the frozen copies."""

    key = models.CharField(max_length=64)
    conversation = models.ForeignKey(
        "reviewapp.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queue_item = models.ForeignKey(
        "labeling.QueueItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The conversation up to the turn under test (a list of {"role", "content"} messages).
    input_messages = models.JSONField(default=list)
    # The reference answer: the accepted assistant turn, or one written by a person.
    reference_output = models.JSONField(null=True, blank=True)
    # The final answers of the labels that made the item (question key -> answer).
    expected_labels = models.JSONField(default=dict, blank=True)
    critical = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    # Where it came from: label ids, annotators, reviewer, final_source, human or judge, schema
    # (rubric) name/version, queue, conversation external id.
    lineage = models.JSONField(default=dict, blank=True)
    # SHA-256 of the canonical JSON of the fields above that define the item (not ids or times),
    # so versions compare item by item and the version hash is over content.
    content_hash = models.CharField(max_length=64, default="")

    class Meta:
        abstract = True


class DatasetItem(DatasetItemFields):
    """The working set: edited freely; a frozen version never changes with it."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "key"], name="dataset_item_key_unique"),
            # NULLs are distinct: only items promoted from a queue item are bound by it.
            models.UniqueConstraint(fields=["dataset", "queue_item"], name="dataset_item_queue_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id}/{self.key}"


class DatasetVersion(models.Model):
    """An immutable, numbered snapshot of a dataset's items with a hash over their content."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    item_count = models.PositiveIntegerField(default=0)
    critical_count = models.PositiveIntegerField(default=0)
    # Labels such as "prod"; a tag names at most one version of a dataset (moved by the service).
    tags = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.dataset_id} v{self.number}"


class DatasetVersionItem(DatasetItemFields):
    """A frozen copy of an item in one version. Written once, when the version is made."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")

    class Meta:
        ordering = ["version", "id"]
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="dataset_version_item_key_unique")]

    def __str__(self) -> str:
        return f"v{self.version_id}/{self.key}"


class GateVerdict(models.TextChoices):
    PASS = "pass", "pass"
    FAIL = "fail", "fail"


class DatasetRun(models.Model):
    """An agent version's results on one dataset version, and the gate's verdict on them.

    The gate settings and the version hash are copied in, so a kept run still says what it was
    judged against after the dataset's thresholds change."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="runs")
    version_hash = models.CharField(max_length=64)
    agent_version = models.CharField(max_length=100)
    item_count = models.PositiveIntegerField(default=0)
    passed_count = models.PositiveIntegerField(default=0)
    critical_count = models.PositiveIntegerField(default=0)
    critical_passed_count = models.PositiveIntegerField(default=0)
    # pass_rate, critical_pass_rate, wilson_lower, needed_items, segments, missing items…
    metrics = models.JSONField(default=dict, blank=True)
    gate = models.CharField(max_length=8, choices=GateVerdict.choices)
    reasons = models.JSONField(default=list, blank=True)
    gate_settings = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["dataset", "agent_version", "created_at"], name="dataset_run_agent")]

    def __str__(self) -> str:
        return f"run {self.id} of {self.agent_version}: {self.gate}"


class DatasetRunResult(models.Model):
    run = models.ForeignKey(DatasetRun, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey(DatasetVersionItem, on_delete=models.CASCADE, related_name="+")
    passed = models.BooleanField()
    score = models.FloatField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="dataset_run_result_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.item_id}: {self.passed}"


class PairwiseComparison(models.Model):
    """A human side-by-side comparison of a candidate agent version against a baseline: the
    pairwise labeling queue that asks it, and where its pairs came from (two runs on one dataset
    version, or pairs of conversations). The per-item sides are on labeling.PairwiseItem; the
    result is computed from the queue's final answers when read (evaluation/pairwise.py)."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="+")
    queue = models.OneToOneField("labeling.Queue", on_delete=models.CASCADE, related_name="pairwise_comparison")
    # Set when built from two runs; NULL for pairs of conversations.
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="pairwise_comparisons"
    )
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    baseline_run = models.ForeignKey(DatasetRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    candidate_run = models.ForeignKey(DatasetRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    baseline_agent_version = models.CharField(max_length=100)
    candidate_agent_version = models.CharField(max_length=100)
    # Draws which side each item's candidate is shown on (labeling.pairwise.candidate_side).
    seed = models.BigIntegerField()
    item_count = models.PositiveIntegerField(default=0)
    # Items left out when the queue was built, by reason (missing_baseline, missing_candidate,
    # no_conversation, duplicate_conversation, ...).
    skipped = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["dataset", "candidate_agent_version", "baseline_agent_version", "-created_at"],
                name="pairwise_comparison_gate",
            )
        ]

    def __str__(self) -> str:
        return f"{self.candidate_agent_version} vs {self.baseline_agent_version}"
