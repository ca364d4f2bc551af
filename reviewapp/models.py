"""Core models: tenants, people, keys, conversations and the audit trail.

Models hold fields, constraints and small properties; behaviour lives in services/selectors.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    APPROVER = "approver", "Approver"
    ENGINEER = "engineer", "Engineer"
    ADMIN = "admin", "Admin"


def zone_validate(value: str) -> None:
    """An IANA time zone name ("UTC", "Europe/Paris"), as zoneinfo knows it."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Paris.") from exc


class Organization(models.Model):
    """A tenant. Nothing crosses from one organization to another."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Project(models.Model):
    """One agent deployment (a use case) inside an organization."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # An IANA zone name (validated by the services): daily sampling budgets roll over at its
    # midnight, so a team's "per day" is their day. Declared after created_at: inside the class
    # body this name shadows django.utils.timezone.
    timezone = models.CharField(max_length=64, default="UTC", validators=[zone_validate])
    # Words and phrases that mark a frustrated end user in this product, added to the default
    # list of reviewapp.derived_signals (bounded and normalised by services.project_frustration_terms_set).
    frustration_terms = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["organization_id", "slug"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="project_slug_unique_per_org")]

    def __str__(self) -> str:
        return f"{self.organization_id}/{self.slug}"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_per_org"),
            models.CheckConstraint(condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.organization_id}:{self.role}"


class ApiKey(models.Model):
    """A project key for an agent. Only a SHA-256 of the secret is stored; the raw key is shown
    once. Keys are revoked, never deleted, so lineage (`Conversation.ingested_by_key`) holds."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, for recognising it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UserCredentials(models.Model):
    """A person's credentials epoch: a number bumped each time their password really changes
    (`services.user_credentials_epoch_bump`). A personal token records the epoch it was issued
    under and works only while it is still current. Deliberately not the password hash: Django
    rewrites the hash when it upgrades a hasher at sign-in (same password, new hash), and that
    must not end anyone's tokens. No row means epoch 0."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="credentials"
    )
    epoch = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "user credentials"

    def __str__(self) -> str:
        return f"{self.user_id}: epoch {self.epoch}"


def user_credentials_epoch(user: object) -> int:
    """The user's current epoch, through the `credentials` relation (select it along with
    `select_related("user__credentials")` when reading many tokens)."""
    try:
        return user.credentials.epoch  # type: ignore[attr-defined]
    except UserCredentials.DoesNotExist:
        return 0


class PersonalToken(models.Model):
    """A person's API token, bound to one organization: it acts with the user's role there,
    read from the membership on every request so a role change or removal applies at once.
    It also ends when the user's password changes (`credentials_epoch`) and when the
    membership it was issued under is gone, even if the person is added back later."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="personal_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    credentials_epoch = models.BigIntegerField(
        default=0,
        help_text="The owner's credentials epoch when issued; -1 for a token whose password had already changed.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.prefix}…)"

    @property
    def status(self) -> str:
        """active, revoked, expired, or "password changed". Reads `user` and its `credentials`:
        select them along."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        if self.credentials_epoch != user_credentials_epoch(self.user):
            return "password changed"
        return "active"


class FeedbackRating(models.TextChoices):
    UP = "up", "Thumbs up"
    DOWN = "down", "Thumbs down"


class Conversation(models.Model):
    """One production exchange (a trace) between an end user and the agent.

    Feedback columns are a denormalised summary of `Feedback` rows, kept so sampling and list
    filters need no join: the latest rating, and whether any signal ever said the user
    rephrased or asked for a human.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="conversations")
    external_id = models.CharField(max_length=255)
    messages = models.JSONField(default=list)
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    agent_version = models.CharField(max_length=100, blank=True, default="")
    end_user_id = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    feedback_rating = models.CharField(max_length=8, choices=FeedbackRating.choices, null=True, blank=True)  # noqa: DJ001 - NULL is 'no rating'
    user_rephrased = models.BooleanField(default=False)
    escalated_by_user = models.BooleanField(default=False)
    ingested_by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ingested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="conversation_external_id_unique")
        ]
        indexes = [
            models.Index(fields=["organization", "-id"], name="conv_org_id_desc"),
            models.Index(fields=["project", "occurred_at"], name="conv_project_occurred"),
            models.Index(fields=["project", "agent_version"], name="conv_project_version"),
            # A queue's backfill walks its project's conversations newest id first, a chunk at
            # a time below a cursor (labeling queue_backfill_step): without this each step
            # read the whole project through conv_project_occurred and sorted it.
            models.Index(fields=["project", "-id"], name="conv_project_id_desc"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.external_id}"


class ConversationTag(models.Model):
    """One row per (conversation, tag): tag filters use an index on every database, where a
    JSON containment lookup would be PostgreSQL-only."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tag_rows")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    tag = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "tag"], name="conversation_tag_unique")]
        indexes = [models.Index(fields=["project", "tag"], name="conv_tag_project_tag")]


class JudgeScore(models.Model):
    """An automated judge's verdict on one criterion. The same (judge, version, criterion) sent
    twice is one score: re-sending is idempotent, a new judge version is a new score."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="judge_scores")
    judge = models.CharField(max_length=100)
    judge_version = models.CharField(max_length=100, blank=True, default="")
    criterion = models.CharField(max_length=100)
    score = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=100, blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)
    reasoning = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "judge", "judge_version", "criterion"], name="judge_score_unique"
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | (Q(confidence__gte=0) & Q(confidence__lte=1)),
                name="judge_score_confidence_0_1",
            ),
        ]
        indexes = [models.Index(fields=["judge", "criterion", "score"], name="judge_score_lookup")]


class Feedback(models.Model):
    """End-user feedback on a conversation. `fingerprint` (a hash of the content) makes a
    re-sent identical feedback a no-op while new feedback is added."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="feedback")
    rating = models.CharField(max_length=8, choices=FeedbackRating.choices, null=True, blank=True)  # noqa: DJ001 - NULL is 'no rating'
    comment = models.TextField(blank=True, default="")
    user_rephrased = models.BooleanField(default=False)
    escalated_by_user = models.BooleanField(default=False)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["conversation", "fingerprint"], name="feedback_unique")]


class SignalKind(models.TextChoices):
    REPHRASED = "rephrased", "User rephrased"
    FRUSTRATION = "frustration", "Frustration"
    ASKED_FOR_HUMAN = "asked_for_human", "Asked for a human"
    GAVE_UP = "gave_up", "Gave up"


class SignalSource(models.TextChoices):
    AGENT = "agent", "Sent by the agent"
    DERIVED = "derived", "Derived from the transcript"


class ConversationSignal(models.Model):
    """Implicit feedback on a conversation: sent by the agent (feedback's user_rephrased,
    escalated_by_user) or derived from the transcript at ingest (reviewapp.derived_signals).
    One row per conversation, kind and source; `turn` and `evidence` say where a derived one
    was seen. Conversation's user_rephrased/escalated_by_user columns stay what the agent sent."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="signals")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=SignalKind.choices)
    source = models.CharField(max_length=16, choices=SignalSource.choices)
    turn = models.PositiveIntegerField(null=True, blank=True)
    evidence = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation_id", "kind", "source"]
        constraints = [
            # Also the index every read goes through: sampling's facts and the list filter look
            # signals up by conversation (and kind).
            models.UniqueConstraint(fields=["conversation", "kind", "source"], name="conversation_signal_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in SignalKind]), name="conversation_signal_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=[s.value for s in SignalSource]), name="conversation_signal_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}:{self.kind}:{self.source}"


class AuditEvent(models.Model):
    """Append-only audit trail: who did what to which object, and with which credential.
    Later capabilities (decisions, labels, exports) write here too, so lineage is one table."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="audit_events")
    kind = models.CharField(max_length=64)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject_type = models.CharField(max_length=64, blank=True, default="")
    subject_id = models.CharField(max_length=64, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_type}:{self.subject_id}"
