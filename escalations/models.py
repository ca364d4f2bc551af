"""Actions agents ask to run, the versioned policy and ladders that decide or route them, the
approvers' votes, the per-action audit trail, and webhook secrets and deliveries.

Models hold fields, constraints and small properties; behaviour lives in services/selectors.
Policies and ladders are stored as validated data (escalations/policies.py, pure) and never
edited: a change is a new version, and every action records the versions that handled it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ActionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    # Past the last tier with nobody deciding: the ladder's timeout outcome (reject) applied.
    EXPIRED = "expired", "Expired"


class DecidedBy(models.TextChoices):
    POLICY = "policy", "Policy"
    PERSON = "person", "Person"
    TIMEOUT = "timeout", "Timeout"


class Outcome(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    ESCALATE = "escalate", "Escalate"


class PolicyVersion(models.Model):
    """One immutable version of a project's policy: ordered rules and the default ladder.

    `rules` is the validated, normalised form produced by `policies.policy_validate`; the current
    policy is the project's highest version. A project with no version yet escalates everything
    to its default ladder (fail safe)."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="policy_versions")
    version = models.PositiveIntegerField()
    rules = models.JSONField(default=list)
    default_ladder = models.CharField(max_length=100, default="default")
    note = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="policy_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} policy v{self.version}"


class LadderVersion(models.Model):
    """One immutable version of a named escalation ladder: tiers (who may decide, timeout,
    approvals required), the timeout outcome and an optional notification webhook.

    `tiers` is the validated form from `policies.ladder_validate`. An action pins the ladder
    version it entered, so editing a ladder never changes the tiers of an action in flight."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="ladder_versions")
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    tiers = models.JSONField(default=list)
    timeout_outcome = models.CharField(max_length=16, default=Outcome.REJECT)
    # Slack/Teams-compatible incoming webhook told when an action enters one of its tiers.
    notify_webhook_url = models.URLField(max_length=2000, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project_id", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], name="ladder_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} ladder {self.name} v{self.version}"


class Action(models.Model):
    """Something an agent asks to do, and what became of it.

    `external_id` is the agent's idempotency key (unique per project). `args` are the args as
    requested and never change; `final_args` are the args to run once approved (an approver
    may edit them), and `args_digest` is the SHA-256 of the canonical JSON of action and
    final args (`policies.args_digest`), so the agent can check it runs what was approved.
    While pending, `ladder`/`tier`/`tier_entered_at`/`due_at` say where it is on its ladder;
    `claimed_by` is an approver's acknowledgement, released when the tier times out."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="actions")
    external_id = models.CharField(max_length=255)
    action = models.CharField(max_length=100)
    args = models.JSONField(default=dict)
    confidence = models.FloatField(null=True, blank=True)
    risk_tags = models.JSONField(default=list, blank=True)
    reasoning = models.TextField(blank=True, default="")
    end_user_id = models.CharField(max_length=255, blank=True, default="")
    conversation_external_id = models.CharField(max_length=255, blank=True, default="")
    # Linked when the conversation exists (it may arrive before or after the action).
    conversation = models.ForeignKey(
        "reviewapp.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    agent_version = models.CharField(max_length=100, blank=True, default="")
    callback_url = models.URLField(max_length=2000, blank=True, default="")

    status = models.CharField(max_length=16, choices=ActionStatus.choices, default=ActionStatus.PENDING)
    decided_by = models.CharField(max_length=16, choices=DecidedBy.choices, blank=True, default="")
    decided_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=1000, blank=True, default="")
    comment = models.TextField(blank=True, default="")
    # The policy's verdict: which version, which rule (index and name; null: no rule matched),
    # and the conditions that matched with the values they saw (shown to approvers).
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    matched_rule_index = models.PositiveIntegerField(null=True, blank=True)
    matched_rule = models.CharField(max_length=200, blank=True, default="")
    policy_outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")
    policy_explanation = models.JSONField(default=list, blank=True)
    final_args = models.JSONField(null=True, blank=True)
    args_digest = models.CharField(max_length=64, blank=True, default="")

    ladder = models.ForeignKey(LadderVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tier = models.PositiveSmallIntegerField(null=True, blank=True)
    tier_entered_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)

    created_by_key = models.ForeignKey(
        "reviewapp.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="action_external_id_unique"),
            models.CheckConstraint(condition=Q(status__in=[s.value for s in ActionStatus]), name="action_status_valid"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | (Q(confidence__gte=0) & Q(confidence__lte=1)),
                name="action_confidence_0_1",
            ),
            # Pending means on a ladder with a due time; decided means not.
            models.CheckConstraint(
                condition=~Q(status="pending") | (Q(due_at__isnull=False) & Q(tier__isnull=False)),
                name="action_pending_has_due",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-id"], name="action_org_id_desc"),
            models.Index(fields=["project", "-id"], name="action_project_id_desc"),
            models.Index(fields=["project", "status", "-id"], name="action_project_status"),
            # The timeout job: pending actions by due time (partial: decided ones drop out).
            models.Index(fields=["due_at"], name="action_pending_due", condition=Q(status="pending")),
            # Velocity windows: earlier actions of one end user / agent version / the project.
            models.Index(fields=["project", "end_user_id", "created_at"], name="action_velocity_user"),
            models.Index(fields=["project", "agent_version", "created_at"], name="action_velocity_version"),
            models.Index(fields=["project", "created_at"], name="action_project_created"),
            models.Index(fields=["project", "conversation_external_id"], name="action_conversation_ext"),
            # Actions still waiting for their conversation: every ingest batch asks whether its
            # project has any (services.actions_link_conversations), one probe of this index.
            models.Index(
                fields=["project", "conversation_external_id"],
                name="action_conversation_unlinked",
                condition=Q(conversation__isnull=True) & ~Q(conversation_external_id=""),
            ),
            # Human decisions, the envelopes' and the calibration store's input
            # (selectors_insight.human_decisions): per action type, by decision time. Partial:
            # the policy decides most actions, and those rows never enter it.
            models.Index(
                fields=["project", "action", "decided_at"],
                name="action_human_decided",
                condition=Q(decided_by="person"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.external_id} {self.action} ({self.status})"


class Vote(models.Model):
    """One approver's decision on an action at a tier. A reject decides at once; approvals
    decide when `approvals_required` distinct people approved the same args (`args_digest`),
    so an edit by a later approver needs its own approvals. One vote per person per tier: a
    person counts once towards a tier's `approvals_required`, and someone who voted at an
    earlier tier may still vote at a later one that names them."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tier = models.PositiveSmallIntegerField()
    decision = models.CharField(max_length=16, choices=[("approve", "Approve"), ("reject", "Reject")])
    args = models.JSONField(null=True, blank=True)
    args_digest = models.CharField(max_length=64, blank=True, default="")
    edited = models.BooleanField(default=False)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["action", "user", "tier"], name="vote_one_per_person_per_tier")]


class ActionEvent(models.Model):
    """Append-only trail of an action: created, policy decision, tier entered, claimed,
    released, vote, decided, timeout, webhook delivery attempts. Written in the transaction of
    the change it records."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "reviewapp.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["action", "id"], name="action_event_action")]


class WebhookSecret(models.Model):
    """A project's signing secret for decision webhooks. Shown once when created; kept in the
    clear because signing needs it (like Stripe's). Rotation creates a new secret and gives the
    old one `expires_at` (a grace period during which deliveries carry both signatures)."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("reviewapp.Project", on_delete=models.CASCADE, related_name="webhook_secrets")
    secret = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "-id"]
        constraints = [
            # One current secret per project (the one new deliveries are signed with first);
            # older ones only wait out their grace. Two admins creating the first secret at
            # once: the second insert fails here instead of leaving two "current" secrets.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(expires_at__isnull=True, revoked_at__isnull=True),
                name="webhook_secret_one_current",
            ),
        ]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One message to one URL (an action's decision to its callback_url, or a tier
    notification to a ladder's webhook), retried with exponential backoff until delivered or
    out of attempts. Written in the decision's transaction (the outbox); sent after commit."""

    organization = models.ForeignKey("reviewapp.Organization", on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=32)  # "decision" or "tier_notification"
    delivery_id = models.CharField(max_length=64, unique=True)
    url = models.URLField(max_length=2000)
    body = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A send message is queued for it until then (stamped on enqueue, cleared by the claim):
    # the due sweeper skips it, so a backlog in the webhooks queue is not re-enqueued every
    # sweep. Past it, a message counts as lost and the sweeper enqueues another.
    enqueued_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_pending_due", condition=Q(status="pending")),
            models.Index(fields=["action", "id"], name="delivery_action"),
        ]


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery: when, how long, what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    response_excerpt = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_unique")]
