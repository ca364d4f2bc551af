"""Pairwise comparisons end to end on the database: building the queue from two runs (missing
items skipped and counted) or from two conversations, the side shuffle recorded and undone in
the result, overlap, agreement and review on the pairwise question, the gate's summary against
prod, the API's roles and tenant isolation."""

from __future__ import annotations

import pytest

from evaluation import selectors_pairwise, services_pairwise, services_runs
from evaluation.models import DatasetVersion, PairwiseComparison
from labeling import pairwise as sides
from labeling import services as labeling_services
from labeling.models import ItemStatus, PairwiseItem, Queue, QueueKind
from tests.evaluation.factories_pairwise import make_pairwise_run, make_pairwise_version
from tests.factories import ConversationFactory, ProjectFactory
from tests.labeling.factories import make_queue

pytestmark = pytest.mark.django_db


def _settings(**overrides):
    return services_pairwise.settings_parse({"seed": 7, **overrides}, default_name="v2 vs v1")


def _build(project, keys=("a", "b", "c", "d"), *, baseline=None, candidate=None, tags=None, **settings):
    dataset, version, _ = make_pairwise_version(project, keys=list(keys), tags=tags)
    baseline = make_pairwise_run(
        dataset, version, baseline or {k: f"baseline says {k}" for k in keys}, agent_version="v1"
    )
    candidate = make_pairwise_run(
        dataset, version, candidate or {k: f"candidate says {k}" for k in keys}, agent_version="v2"
    )
    comparison = services_pairwise.pairwise_from_runs(
        dataset=dataset, baseline_run=baseline, candidate_run=candidate, settings=_settings(**settings)
    )
    return dataset, version, comparison


def _answer(item, user, answer, key="overall"):
    labeling_services.item_claim(queue=item.queue, user=user)
    labeling_services.label_submit(item=item, user=user, answers={key: answer})


def test_building_from_two_runs_skips_and_counts_items_missing_in_either_run(project):
    keys = ["a", "b", "c", "d", "e"]
    _, _, comparison = _build(
        project,
        keys,
        baseline={"a": "A1", "b": "B1", "c": "C1", "e": None},
        candidate={"a": "A2", "c": "C2", "d": "D2", "e": "E2"},
        tags={"a": ["billing"]},
    )
    queue = comparison.queue
    assert queue.kind == QueueKind.PAIRWISE
    assert comparison.item_count == 2
    # d has no baseline result and e a null output: both missing_baseline; b has no candidate one.
    assert comparison.skipped == {"missing_baseline": 2, "missing_candidate": 1}
    pairs = {p.key: p for p in PairwiseItem.objects.filter(item__queue=queue)}
    assert set(pairs) == {"a", "c"}
    assert pairs["a"].tags == ["billing"]
    assert (pairs["a"].baseline_version, pairs["a"].candidate_version) == ("v1", "v2")
    assert pairs["a"].input_messages == [{"role": "user", "content": "question a"}]
    # The side drawn from the seed is recorded, and the outputs sit accordingly.
    for key, pair in pairs.items():
        assert pair.candidate_side == sides.candidate_side(7, key)
        candidate = pair.left_output if pair.candidate_side == sides.LEFT else pair.right_output
        baseline = pair.right_output if pair.candidate_side == sides.LEFT else pair.left_output
        assert candidate == [{"role": "assistant", "content": f"{key.upper()}2"}]
        assert baseline == [{"role": "assistant", "content": f"{key.upper()}1"}]
    assert queue.items.count() == 2
    assert all(i.labels_needed == 1 for i in queue.items.all())
    version = queue.schema.latest_version
    assert version.questions[0]["key"] == "overall"
    assert version.questions[0]["options"] == list(sides.OPTIONS)


def test_the_shuffle_is_undone_choosing_a_on_a_left_candidate_is_a_candidate_win(project, member):
    # Enough items that both sides occur under seed 7.
    keys = [f"k{i}" for i in range(8)]
    _, _, comparison = _build(project, keys)
    annotator = member("annotator")
    pairs = list(PairwiseItem.objects.filter(item__queue=comparison.queue).select_related("item__queue"))
    assert {p.candidate_side for p in pairs} == {sides.LEFT, sides.RIGHT}
    for pair in pairs:
        # Always "A better": a candidate win exactly where the candidate was shown on the left.
        _answer(pair.item, annotator, sides.A_BETTER)
    left = sum(1 for p in pairs if p.candidate_side == sides.LEFT)

    result = selectors_pairwise.comparison_result(comparison=comparison)

    counts = result.primary.figures.counts
    assert (counts.candidate, counts.baseline) == (left, len(pairs) - left)
    assert result.primary.figures.win_rate == pytest.approx(left / len(pairs))
    assert result.without_final == 0


def test_overlap_agreement_and_review_decide_the_final_answer_the_result_uses(project, member):
    _, _, comparison = _build(project, ["a", "b", "c"], annotations_per_item=2)
    first, second = member("annotator"), member("annotator")
    items = {p.key: p for p in PairwiseItem.objects.filter(item__queue=comparison.queue).select_related("item__queue")}
    # a: both say equivalent (agreement); b: they disagree (review decides); c: one label only.
    _answer(items["a"].item, first, sides.EQUIVALENT)
    _answer(items["a"].item, second, sides.EQUIVALENT)
    _answer(items["b"].item, first, sides.A_BETTER)
    _answer(items["b"].item, second, sides.B_BETTER)
    _answer(items["c"].item, first, sides.BOTH_BAD)
    b = items["b"].item
    b.refresh_from_db()
    assert b.status == ItemStatus.NEEDS_REVIEW

    mid = selectors_pairwise.comparison_result(comparison=comparison)
    assert mid.without_final == 2
    assert mid.primary.unanswered == 2
    assert mid.primary.figures.counts.equivalent == 1

    # The reviewer picks the side where the candidate is shown.
    winner = sides.A_BETTER if items["b"].candidate_side == sides.LEFT else sides.B_BETTER
    labeling_services.item_review(item=b, user=member("engineer"), answers={"overall": winner})

    result = selectors_pairwise.comparison_result(comparison=comparison)
    counts = result.primary.figures.counts
    assert (counts.candidate, counts.equivalent, counts.baseline) == (1, 1, 0)
    assert result.without_final == 1  # c still needs its second label


def test_every_question_and_segment_is_reported(project, member):
    _, _, comparison = _build(
        project,
        ["a", "b"],
        tags={"a": ["billing"], "b": ["billing", "refunds"]},
        questions=[{"key": "overall", "label": "Overall?"}, {"key": "tone", "label": "Tone?"}],
    )
    user = member("annotator")
    for pair in PairwiseItem.objects.filter(item__queue=comparison.queue).select_related("item__queue"):
        labeling_services.item_claim(queue=pair.item.queue, user=user)
        labeling_services.label_submit(
            item=pair.item, user=user, answers={"overall": sides.EQUIVALENT, "tone": sides.BOTH_BAD}
        )
    payload = selectors_pairwise.result_payload(selectors_pairwise.comparison_result(comparison=comparison))
    assert [q["key"] for q in payload["questions"]] == ["overall", "tone"]
    assert payload["questions"][1]["counts"]["both_bad"] == 2
    assert [s["tag"] for s in payload["questions"][0]["segments"]] == ["billing", "refunds"]
    assert payload["questions"][0]["segments"][0]["n"] == 2
    assert payload["gate_interval"] == "wilson_decisive"


def test_from_two_conversations_the_shared_start_is_the_input(project):
    shared = [{"role": "user", "content": "Where is my order?"}]
    ConversationFactory(
        project=project, external_id="old-1", messages=[*shared, {"role": "assistant", "content": "Old"}]
    )
    ConversationFactory(
        project=project, external_id="new-1", messages=[*shared, {"role": "assistant", "content": "New"}]
    )
    ConversationFactory(project=project, external_id="same", messages=shared)
    pairs = services_pairwise.conversation_pairs_parse(
        [
            {"baseline": "old-1", "candidate": "new-1", "tags": ["orders"]},
            {"baseline": "old-1", "candidate": "missing"},
            {"baseline": "same", "candidate": "same"},
        ]
    )
    comparison = services_pairwise.pairwise_from_conversations(
        project=project, pairs=pairs, baseline_version="v1", candidate_version="v2", settings=_settings()
    )
    assert comparison.dataset is None
    assert comparison.skipped == {"identical": 1, "unknown_conversation": 1}
    pair = PairwiseItem.objects.get(item__queue=comparison.queue)
    assert pair.input_messages == shared
    assert pair.item.conversation.external_id == "old-1"
    assert pair.tags == ["orders"]
    assert {pair.left_output[0]["content"], pair.right_output[0]["content"]} == {"Old", "New"}


# --- the gate ----------------------------------------------------------------------------------


def test_the_gate_reads_the_newest_comparison_against_the_prod_agent_version(project, member):
    dataset, version, items = make_pairwise_version(project, keys=["a", "b", "c"])
    DatasetVersion.objects.filter(pk=version.pk).update(tags=["prod"])
    prod_run = make_pairwise_run(dataset, version, {k: "old" for k in items}, agent_version="v1")
    candidate_run = make_pairwise_run(dataset, version, {k: "new" for k in items}, agent_version="v2")
    assert selectors_pairwise.gate_comparison(dataset=dataset, agent_version="v2") is None

    comparison = services_pairwise.pairwise_from_runs(
        dataset=dataset, baseline_run=prod_run, candidate_run=candidate_run, settings=_settings()
    )
    user = member("annotator")
    for pair in PairwiseItem.objects.filter(item__queue=comparison.queue).select_related("item__queue"):
        # The baseline wins every item.
        _answer(pair.item, user, sides.B_BETTER if pair.candidate_side == sides.LEFT else sides.A_BETTER)

    summary = selectors_pairwise.gate_comparison(dataset=dataset, agent_version="v2")
    assert summary.baseline_agent_version == "v1"
    assert summary.n_pairs == 3
    assert summary.candidate_win_rate == 0
    # Wilson on 0 of 3 decisive pairs: [0, 0.5615]: not yet shown worse.
    assert summary.low == 0
    assert summary.high == pytest.approx(0.561497, abs=1e-5)
    # No comparison of v3 against prod.
    assert selectors_pairwise.gate_comparison(dataset=dataset, agent_version="v3") is None


def test_no_prod_tag_means_no_comparison(project):
    dataset, _, _ = _build(project, ["a"])
    assert selectors_pairwise.gate_comparison(dataset=dataset, agent_version="v2") is None


# --- the API -----------------------------------------------------------------------------------


def _runs(project, keys=("a", "b")):
    dataset, version, _ = make_pairwise_version(project, keys=list(keys))
    baseline = make_pairwise_run(dataset, version, {k: "<script>old</script>" for k in keys}, agent_version="v1")
    candidate = make_pairwise_run(dataset, version, {k: "new" for k in keys}, agent_version="v2")
    return dataset, baseline, candidate


def test_an_engineer_creates_a_pairwise_queue_from_two_runs_and_reads_its_result(project, api_client_for):
    dataset, baseline, candidate = _runs(project)
    client = api_client_for("engineer")

    response = client.post(
        f"/api/v1/datasets/{dataset.pk}/pairwise",
        {"baseline_run": baseline.pk, "candidate_run": candidate.pk, "annotations_per_item": 2, "seed": 3},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "v2 vs v1"
    assert (body["items"], body["seed"], body["skipped"]) == (2, 3, {})
    assert body["questions"][0]["key"] == "overall"
    assert body["questions"][0]["win_rate"] is None
    queue = Queue.objects.get(pk=body["queue"])
    assert queue.annotations_per_item == 2 and queue.kind == "pairwise"
    result = client.get(f"/api/v1/pairwise/{queue.pk}/result")
    assert result.status_code == 200
    assert result.json()["without_final"] == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"baseline_run": "x"}, "baseline_run"),
        ({"candidate_run": 2**40}, "candidate_run"),
        ({"annotations_per_item": 0}, "annotations_per_item"),
        ({"name": "a\x00b"}, "name"),
        ({"questions": [{"key": "Bad Key", "label": "x"}]}, "questions[0].key"),
        ({"questions": "overall"}, "questions"),
        ({"seed": -1}, "seed"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(project, api_client_for, change, field):
    dataset, baseline, candidate = _runs(project)
    body = {"baseline_run": baseline.pk, "candidate_run": candidate.pk, **change}
    response = api_client_for("engineer").post(f"/api/v1/datasets/{dataset.pk}/pairwise", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not PairwiseComparison.objects.exists()


def test_runs_of_another_dataset_or_the_same_run_twice_are_refused(project, api_client_for):
    dataset, baseline, candidate = _runs(project)
    _, other_run, _ = _runs(project)
    client = api_client_for("engineer")
    url = f"/api/v1/datasets/{dataset.pk}/pairwise"
    assert client.post(url, {"baseline_run": other_run.pk, "candidate_run": candidate.pk}, format="json").json()[
        "errors"
    ].keys() == {"baseline_run"}
    same = client.post(url, {"baseline_run": baseline.pk, "candidate_run": baseline.pk}, format="json")
    assert same.status_code == 400 and "candidate_run" in same.json()["errors"]


def test_roles_and_tenants(project, other_project, api_client_for, agent_client, other_org):
    dataset, baseline, candidate = _runs(project)
    body = {"baseline_run": baseline.pk, "candidate_run": candidate.pk}
    url = f"/api/v1/datasets/{dataset.pk}/pairwise"
    for role in ("annotator", "approver"):
        assert api_client_for(role).post(url, body, format="json").status_code == 403
    assert agent_client.post(url, body, format="json").status_code == 403
    # Another organization's engineer: the dataset is not found.
    assert api_client_for("engineer", organization=other_org).post(url, body, format="json").status_code == 404
    assert not PairwiseComparison.objects.exists()

    created = api_client_for("admin").post(url, body, format="json").json()
    result_url = f"/api/v1/pairwise/{created['queue']}/result"
    assert api_client_for("engineer", organization=other_org).get(result_url).status_code == 404
    assert api_client_for("annotator").get(result_url).status_code == 403
    assert api_client_for("engineer").get(result_url).status_code == 200
    # A labeling queue that is not a comparison is not found either.
    plain = make_queue(project)
    assert api_client_for("engineer").get(f"/api/v1/pairwise/{plain.pk}/result").status_code == 404


def test_pairs_of_conversations_through_the_api(project, api_client_for):
    ConversationFactory(project=project, external_id="b-1", messages=[{"role": "assistant", "content": "B"}])
    ConversationFactory(project=project, external_id="c-1", messages=[{"role": "assistant", "content": "C"}])
    other = ProjectFactory(organization=project.organization, slug="other")
    ConversationFactory(project=other, external_id="x-1", messages=[{"role": "assistant", "content": "X"}])
    client = api_client_for("engineer")
    body = {
        "project": project.slug,
        "baseline_version": "v1",
        "candidate_version": "v2",
        "pairs": [{"baseline": "b-1", "candidate": "c-1"}, {"baseline": "b-1", "candidate": "x-1"}],
    }
    response = client.post("/api/v1/pairwise", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["skipped"] == {"unknown_conversation": 1}
    assert client.post("/api/v1/pairwise", {**body, "pairs": []}, format="json").json()["errors"].keys() == {"pairs"}


def test_a_run_on_a_dataset_requiring_not_worse_fails_when_people_judged_the_candidate_worse(project, member):
    """The run API's service looks the comparison up itself: without one the gate fails saying
    so; once people preferred the prod version on every item (Wilson high < 1/2), it fails for
    being worse, even with every item passed."""
    keys = [f"k{i}" for i in range(8)]
    dataset, version, items = make_pairwise_version(project, keys=keys)
    DatasetVersion.objects.filter(pk=version.pk).update(tags=["prod"])
    dataset.gate_require_not_worse = True
    dataset.save(update_fields=["gate_require_not_worse"])
    prod_run = make_pairwise_run(dataset, version, {k: "old" for k in items}, agent_version="v1")
    all_passed = [services_runs.RunResultIn(item_id=k, passed=True) for k in keys]

    run, result = services_runs.dataset_run_create(
        dataset=dataset, version=version, agent_version="v2", results=all_passed
    )
    assert run.gate == "fail"
    assert any("No human comparison against prod" in r for r in run.reasons)

    candidate_run = make_pairwise_run(dataset, version, {k: "new" for k in items}, agent_version="v2")
    comparison = services_pairwise.pairwise_from_runs(
        dataset=dataset, baseline_run=prod_run, candidate_run=candidate_run, settings=_settings()
    )
    user = member("annotator")
    for pair in PairwiseItem.objects.filter(item__queue=comparison.queue).select_related("item__queue"):
        _answer(pair.item, user, sides.B_BETTER if pair.candidate_side == sides.LEFT else sides.A_BETTER)

    run, result = services_runs.dataset_run_create(
        dataset=dataset, version=version, agent_version="v2", results=all_passed
    )
    assert result.pass_rate == 1.0
    assert run.gate == "fail"
    assert result.comparison is not None and result.comparison.high < 0.5
    assert not any("No human comparison" in r for r in run.reasons)

    # The same comparison, with people preferring the candidate everywhere: the gate passes.
    for pair in PairwiseItem.objects.filter(item__queue=comparison.queue).select_related("item"):
        pair.item.final_answers = {"overall": sides.A_BETTER if pair.candidate_side == sides.LEFT else sides.B_BETTER}
        pair.item.save(update_fields=["final_answers"])
    run, _ = services_runs.dataset_run_create(dataset=dataset, version=version, agent_version="v2", results=all_passed)
    assert run.gate == "pass", run.reasons
