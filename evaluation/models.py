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
