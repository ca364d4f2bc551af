from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from demo.scenarios import DEMO_PASSWORD, airline_conversations
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import (
    AuditEvent,
    Conversation,
    ConversationTag,
    Feedback,
    JudgeScore,
    Membership,
    Organization,
    Project,
)
from reviewapp.selectors import ConversationFilters, conversation_list

User = get_user_model()


@pytest.fixture(autouse=True)
def _demo_mode(settings) -> None:
    # The seeder runs on development machines (DEBUG on); with it off it needs --force.
    settings.DEBUG = True


def _seed(seed: int = 7, conversations: int = 60, retail: int = 20) -> str:
    out = StringIO()
    call_command("seed_demo", seed=seed, conversations=conversations, retail_conversations=retail, stdout=out)
    return out.getvalue()


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Organization,
            Project,
            User,
            Membership,
            Conversation,
            ConversationTag,
            JudgeScore,
            Feedback,
            AuditEvent,
        )
    }


def test_seed_demo_creates_tenant_people_and_conversations(db):
    output = _seed()

    org = Organization.objects.get(slug="demo")
    assert org.name == "Demo Airline"
    project = Project.objects.get(organization=org, slug="support")
    roles = dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))
    assert roles == {
        "annotator": "annotator",
        "approver": "approver",
        "lead": "approver",
        "cfo": "approver",
        "engineer": "engineer",
        "admin": "admin",
    }
    for username in roles:
        assert User.objects.get(username=username).check_password(DEMO_PASSWORD)

    conversations = Conversation.objects.filter(project=project)
    assert conversations.count() == 60
    assert set(conversations.values_list("organization_id", flat=True)) == {org.pk}
    assert sorted(conversations.values_list("external_id", flat=True)) == [f"demo-7-{i:05d}" for i in range(60)]
    # gpt-judge grades three criteria, helpfulness-judge one.
    assert JudgeScore.objects.filter(conversation__project=project).count() == 60 * 4
    assert set(JudgeScore.objects.values_list("judge", "judge_version").distinct()) == {
        ("gpt-judge", "v3"),
        ("helpfulness-judge", "v1"),
    }
    assert Feedback.objects.filter(conversation__project=project).exists()
    assert ConversationTag.objects.filter(project=project).count() >= 60 * 2  # intent + segment at least

    now = timezone.now()
    for conversation in conversations:
        assert now - dt.timedelta(days=14, minutes=1) <= conversation.occurred_at <= now
        assert conversation.messages[0]["role"] == "system"
        assert 2 <= sum(1 for m in conversation.messages if m["role"] == "user") <= 8
        assert conversation.agent_version in {"support-v1.3", "support-v1.4", "support-v2.0"}
        assert {"channel", "locale", "customer_tier"} <= set(conversation.metadata)

    for username in roles:
        assert f"  {username} " in output
    assert f"(password for each: {DEMO_PASSWORD})" in output
    assert "http://127.0.0.1:8000/" in output


def test_seed_demo_admin_is_scoped_staff_not_superuser(db):
    _seed()

    admin = User.objects.get(username="admin")
    assert admin.is_staff is True
    assert admin.is_superuser is False
    assert admin.has_perm("reviewapp.view_conversation")
    assert admin.has_perm("reviewapp.change_membership")
    assert not User.objects.get(username="annotator").is_staff


def test_seed_demo_twice_adds_nothing(db):
    _seed()
    before = _counts()

    output = _seed()

    assert _counts() == before
    assert "60 already there" in output


def test_seed_demo_same_seed_same_content(db):
    _seed()
    first = {
        c.external_id: (c.messages, c.tags, c.metadata, c.agent_version, c.end_user_id)
        for c in Conversation.objects.filter(project__slug="support")
    }
    scores = sorted(
        JudgeScore.objects.values_list("conversation__external_id", "judge", "criterion", "label", "confidence")
    )
    Conversation.objects.all().delete()

    _seed()

    again = {
        c.external_id: (c.messages, c.tags, c.metadata, c.agent_version, c.end_user_id)
        for c in Conversation.objects.filter(project__slug="support")
    }
    assert again == first
    assert (
        sorted(JudgeScore.objects.values_list("conversation__external_id", "judge", "criterion", "label", "confidence"))
        == scores
    )


def test_seed_demo_count_does_not_change_earlier_conversations():
    reference = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    short = [c.payload for c in airline_conversations(seed=7, count=20, reference=reference)]
    long = [c.payload for c in airline_conversations(seed=7, count=50, reference=reference)]

    assert long[:20] == short


def test_seed_demo_different_seed_differs(db):
    _seed(seed=7, retail=0)
    _seed(seed=8, retail=0)

    project = Project.objects.get(organization__slug="demo", slug="support")
    assert Conversation.objects.filter(project=project).count() == 120
    seven = list(
        Conversation.objects.filter(project=project, external_id__startswith="demo-7-").order_by("external_id")
    )
    eight = list(
        Conversation.objects.filter(project=project, external_id__startswith="demo-8-").order_by("external_id")
    )
    assert len(seven) == len(eight) == 60
    assert [c.messages for c in seven] != [c.messages for c in eight]
    assert seven[0].messages != eight[0].messages


def test_seed_demo_retail_tenant_is_separate(db):
    _seed(retail=20)

    demo = Organization.objects.get(slug="demo")
    retail = Organization.objects.get(slug="demo-retail")
    assert retail.name == "Demo Retail"
    shop = Project.objects.get(organization=retail, slug="shop")
    assert dict(Membership.objects.filter(organization=retail).values_list("user__username", "role")) == {
        "admin": "admin",
        "engineer": "engineer",
    }

    assert Conversation.objects.filter(project=shop).count() == 20
    assert set(Conversation.objects.filter(project=shop).values_list("organization_id", flat=True)) == {retail.pk}
    demo_rows = conversation_list(organization=demo)
    retail_rows = conversation_list(organization=retail)
    assert demo_rows.count() == 60
    assert retail_rows.count() == 20
    assert not set(demo_rows.values_list("pk", flat=True)) & set(retail_rows.values_list("pk", flat=True))
    assert conversation_list(organization=demo, filters=ConversationFilters(project=shop)).count() == 0
    assert not any(c.external_id.startswith("retail-") for c in demo_rows)


def test_seed_demo_refuses_with_debug_off_unless_forced(db, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo", conversations=5, retail_conversations=1, stdout=StringIO())
    assert _counts() == dict.fromkeys(_counts(), 0)

    call_command("seed_demo", conversations=5, retail_conversations=1, force=True, stdout=StringIO())
    assert Conversation.objects.filter(project__organization__slug="demo").count() == 5


def test_seed_demo_rejects_negative_counts(db):
    with pytest.raises(CommandError):
        call_command("seed_demo", conversations=-1, stdout=StringIO())

    assert not Organization.objects.exists()


def test_generated_traffic_has_realistic_signals_and_judge_disagreement():
    reference = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    items = list(airline_conversations(seed=7, count=2000, reference=reference))
    n = len(items)

    feedback = [c.payload.get("feedback") or {} for c in items]
    rated = sum(1 for f in feedback if f.get("rating")) / n
    rephrased = sum(1 for f in feedback if f.get("user_rephrased")) / n
    escalated = sum(1 for f in feedback if f.get("escalated_by_user")) / n
    assert 0.11 <= rated <= 0.19
    assert 0.05 <= rephrased <= 0.11
    assert 0.015 <= escalated <= 0.05

    wrong = total = 0
    wrong_conf: list[float] = []
    right_conf: list[float] = []
    for item in items:
        for score in item.payload["judge_scores"]:
            is_wrong = (score["label"] == "pass") != item.truth[score["criterion"]][0]
            wrong += is_wrong
            total += 1
            (wrong_conf if is_wrong else right_conf).append(score["confidence"])
    assert 0.08 <= wrong / total <= 0.15
    assert sum(wrong_conf) / len(wrong_conf) < sum(right_conf) / len(right_conf) - 0.1

    bad_amount = [c for c in items if "Refunded" in c.truth["correctness"][1]]
    bad_policy = [c for c in items if not c.truth["policy_compliance"][0]]
    assert bad_amount and bad_policy
    # Every payload is valid input for the ingest API.
    for item in items[:200]:
        ConversationIn.model_validate(item.payload)
