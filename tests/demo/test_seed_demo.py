from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min
from django.utils import timezone

from demo.labeling import DEMO_ANNOTATORS, DEMO_GOLD_ITEMS, DEMO_LABELS_EACH, DEMO_REVIEWS, demo_gold_wanted
from demo.scenarios import DEMO_PASSWORD, airline_conversations
from labeling.models import AgreementSnapshot, Assignment, ItemEvent, ItemStatus, Label, Queue, QueueItem
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
            QueueItem,
            Assignment,
            Label,
            ItemEvent,
            AgreementSnapshot,
        )
    }


def test_seed_demo_creates_tenant_people_and_conversations(db):
    output = _seed()

    org = Organization.objects.get(slug="demo")
    assert org.name == "Demo Airline"
    project = Project.objects.get(organization=org, slug="support")
    roles = dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))
    logins = {
        "annotator": "annotator",
        "approver": "approver",
        "lead": "approver",
        "cfo": "approver",
        "engineer": "engineer",
        "admin": "admin",
    }
    # The logins, and the annotators whose labels the statistics pages show (no password).
    assert roles == logins | dict.fromkeys(["ana", "ben", "chen", "dara"], "annotator")
    for username in logins:
        assert User.objects.get(username=username).check_password(DEMO_PASSWORD)
    assert not User.objects.get(username="ana").has_usable_password()

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

    for username in logins:
        assert f"  {username} " in output
    assert f"(password for each: {DEMO_PASSWORD})" in output
    assert "http://127.0.0.1:8000/" in output


def test_seed_demo_labels_the_qa_queue_so_the_statistics_pages_have_figures(db):
    _seed(conversations=600, retail=0)

    queue = Queue.objects.get(project__organization__slug="demo", name="Daily QA sample")
    labels = Label.objects.filter(queue=queue)
    names = [username for username, _, _ in DEMO_ANNOTATORS]
    per_person = dict(labels.values_list("user__username").annotate(n=Count("id")))
    # Several annotators, each a full morning's work, through the services (assignments,
    # events and counters as the browser leaves them).
    assert per_person == dict.fromkeys(names, DEMO_LABELS_EACH)
    assert Assignment.objects.filter(queue=queue, status="submitted").count() == labels.count()
    assert ItemEvent.objects.filter(item__queue=queue, kind="labeled").count() == labels.count()
    # Overlap 2, a third opinion where two disagreed, and some items still disputed (gold checks
    # are everyone's, below).
    per_item = Counter(labels.filter(item__is_gold=False).values_list("item_id", flat=True))
    assert set(per_item.values()) <= {1, 2, 3}
    assert Counter(per_item.values())[2] >= 30
    assert Counter(per_item.values())[3] >= 5
    assert QueueItem.objects.filter(queue=queue, status=ItemStatus.NEEDS_REVIEW).exists()
    reviewed = QueueItem.objects.filter(queue=queue, final_source="review")
    assert reviewed.count() == DEMO_REVIEWS
    assert set(reviewed.values_list("reviewed_by__username", flat=True)) == {"engineer"}
    assert QueueItem.objects.filter(queue=queue, status=ItemStatus.OPEN).exists()  # work left for the demo login
    # The labels took a morning, not a second: the annotators page shows a human pace.
    spans = labels.values("user_id").annotate(first=Min("created_at"), last=Max("created_at"))
    assert all(dt.timedelta(minutes=10) < span["last"] - span["first"] < dt.timedelta(hours=3) for span in spans)

    snapshot = AgreementSnapshot.objects.get(queue=queue)
    assert (snapshot.label_count, snapshot.state, snapshot.error) == (labels.count(), "idle", "")
    correct = snapshot.payload["agreement"]["questions"]["correct"]
    assert 0.7 <= correct["percent_agreement"] < 1
    assert correct["gwet_ac1"] > 0.5
    rows = {row["username"]: row for row in snapshot.payload["annotators"]}
    assert set(rows) == set(names)
    assert all(row["done"] == DEMO_LABELS_EACH and 5 <= row["labels_per_hour"] <= 300 for row in rows.values())
    # The careless one agrees least with the others.
    assert min(rows, key=lambda name: rows[name]["agreement_with_others"]) == "dara"
    # Gold checks, met through the claims at the queue's gold rate, whose turns hash the queue's
    # and the annotator's ids (which differ from run to run on PostgreSQL): so only what holds
    # whatever the ids is asserted. Nearly every annotator met some, and between them they got
    # some right and some wrong.
    gold = QueueItem.objects.filter(queue=queue, is_gold=True)
    assert gold.count() == DEMO_GOLD_ITEMS
    assert all(
        set(answers) == {"correct", "policy", "helpfulness"} for answers in gold.values_list("gold_answers", flat=True)
    )
    assert sum(row["gold_items"] > 0 for row in rows.values()) >= 3
    hits = sum(row["gold_accuracy"] * row["gold_items"] for row in rows.values())
    total = sum(row["gold_items"] for row in rows.values())
    assert total == labels.filter(item__is_gold=True).count()
    assert 0 < round(hits) < total
    assert any(
        figures["cohen_kappa"] is not None
        for pair in snapshot.payload["agreement"]["pairs"]
        for figures in pair["questions"].values()
    )


def test_the_seeded_figures_show_on_the_pages(db, client):
    _seed(conversations=600, retail=0)
    queue = Queue.objects.get(project__organization__slug="demo", name="Daily QA sample")
    client.force_login(User.objects.get(username="engineer"))

    agreement = client.get(f"/labeling/queues/{queue.pk}/agreement")
    annotators = client.get(f"/labeling/queues/{queue.pk}/annotators")

    assert agreement.status_code == annotators.status_code == 200
    assert "dara" in annotators.content.decode()
    gold_column = re.findall(
        r"<td>([0-9]+%) <span class=\"muted small\">of ([0-9]+)</span></td>", annotators.content.decode()
    )
    assert len(gold_column) == len(DEMO_ANNOTATORS)  # each annotator's gold accuracy, "of" how many
    page = agreement.content.decode()
    for empty in ["No answers to compare yet.", "No two annotators have labeled the same item yet.", "being computed"]:
        assert empty not in page
    assert "κ " in page  # per-pair kappas


def test_seed_demo_admin_is_scoped_staff_not_superuser(db):
    _seed()

    admin = User.objects.get(username="admin")
    assert admin.is_staff is True
    assert admin.is_superuser is False
    assert admin.has_perm("reviewapp.view_conversation")
    assert admin.has_perm("reviewapp.change_membership")
    assert not User.objects.get(username="annotator").is_staff


def _gold() -> list[tuple]:
    """The gold checks by conversation, with their answers and who labeled them how."""
    items = QueueItem.objects.filter(is_gold=True).order_by("conversation__external_id")
    return [
        (
            item.conversation.external_id,
            item.queue.name,
            item.gold_answers,
            sorted(Label.objects.filter(item=item).values_list("user__username", "answers")),
        )
        for item in items
    ]


def test_seed_demo_twice_adds_nothing(db):
    _seed()
    before = _counts()
    gold = _gold()

    output = _seed()

    assert _counts() == before
    assert _gold() == gold
    # Their labels too, when the annotators met any (at 60 conversations, three gold checks and
    # the ids' hash decide whether they did).
    assert len(gold) == demo_gold_wanted(60) == 3
    assert "60 already there" in output
    assert "Gold checks added" not in output


def test_seed_demo_same_seed_same_content(db):
    _seed()
    first = {
        c.external_id: (c.messages, c.tags, c.metadata, c.agent_version, c.end_user_id)
        for c in Conversation.objects.filter(project__slug="support")
    }
    scores = sorted(
        JudgeScore.objects.values_list("conversation__external_id", "judge", "criterion", "label", "confidence")
    )
    gold = _gold()
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
    # The gold checks are the same conversations with the same expected answers.
    assert [row[:3] for row in _gold()] == [row[:3] for row in gold]
    assert len(gold) == demo_gold_wanted(60) == 3


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


def test_seed_demo_freezes_a_golden_dataset_with_a_passing_and_a_failing_run(db, client):
    _seed(conversations=600, retail=0)
    from evaluation.models import Dataset, DatasetRun

    dataset = Dataset.objects.get(project__organization__slug="demo", name="Support golden set")
    version = dataset.versions.get()
    final = QueueItem.objects.filter(queue__project=dataset.project, status=ItemStatus.COMPLETED).count()
    assert version.number == 1 and version.tags == ["prod"] and version.item_count == final > 0
    assert version.critical_count > 0
    runs = {run.agent_version: run for run in DatasetRun.objects.filter(dataset=dataset)}
    assert runs["support-agent-2026.11"].gate == "pass"
    assert runs["support-agent-2026.12-rc1"].gate == "fail"
    assert all(run.version_hash == version.content_hash for run in runs.values())
    # Run again: nothing doubles.
    _seed(conversations=600, retail=0)
    assert Dataset.objects.filter(project=dataset.project).count() == 1
    assert DatasetRun.objects.filter(dataset=dataset).count() == 2
    client.force_login(User.objects.get(username="engineer"))
    page = client.get(f"/evaluation/datasets/{dataset.pk}/runs/section")
    assert page.status_code == 200 and b"support-agent-2026.12-rc1" in page.content
