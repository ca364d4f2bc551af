"""The release-gate run endpoints: posting results, the verdict and what the run keeps, listing,
one run with its paged results, comparing two runs; bounds, tenants and roles."""

import pytest

from evaluation import services_runs
from evaluation.models import DatasetRun, DatasetRunResult
from tests.evaluation.factories_runs import make_run, make_version

ITEMS = [
    {"key": "a", "tags": ["billing"], "split": "test"},
    {"key": "b", "tags": ["billing", "refund"], "split": "train"},
    {"key": "c", "critical": True, "split": "train"},
    {"key": "d", "critical": True, "tags": ["refund"], "split": "test"},
]


def runs_url(dataset, number=1):
    return f"/api/v1/datasets/{dataset.pk}/versions/{number}/runs"


@pytest.fixture
def golden(project):
    return make_version(project, items=ITEMS)


def test_an_engineer_posts_a_run_and_gets_the_verdict(api_client_for, golden):
    dataset, version = golden
    engineer = api_client_for("engineer")
    body = {
        "agent_version": "v2",
        "results": [
            {"item_id": "a", "passed": True, "score": 0.9, "output": {"text": "<b>hi</b>", "n": [1, 2]}},
            {"item_id": "b", "passed": False},
            {"item_id": "c", "passed": True, "score": 1},
            {"item_id": "d", "passed": True, "output": None},
        ],
    }
    response = engineer.post(runs_url(dataset), body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    run = DatasetRun.objects.get()
    assert data["id"] == run.pk
    assert data["version"] == 1
    assert data["version_hash"] == version.content_hash == run.version_hash
    assert data["agent_version"] == "v2"
    assert (data["item_count"], data["passed_count"], data["critical_count"], data["critical_passed_count"]) == (
        4,
        3,
        2,
        2,
    )
    assert data["pass_rate"] == 0.75
    assert data["critical_pass_rate"] == 1.0
    assert data["gate"] == "fail"
    assert data["reasons"] == ["Pass rate 75.00% (3 of 4) is below the target 95.00%."]
    assert data["needed_items"] == {"n": None, "assumption": "unreachable", "target": 0.95, "enough": False}
    assert data["missing"] == []
    segments = {(s["kind"], s["name"]): (s["n"], s["passed"]) for s in data["segments"]}
    assert segments == {
        ("tag", "billing"): (2, 1),
        ("tag", "refund"): (2, 1),
        ("split", "test"): (2, 2),
        ("split", "train"): (2, 1),
    }
    assert data["gate_settings"] == {
        "pass_rate": 0.95,
        "critical_pass_rate": 1.0,
        "mode": "observed",
        "confidence": 0.95,
        "require_not_worse": False,
    }
    assert run.created_by == engineer.user
    stored = {r.item.key: (r.passed, r.score, r.output) for r in DatasetRunResult.objects.filter(run=run)}
    assert stored == {
        "a": (True, 0.9, {"text": "<b>hi</b>", "n": [1, 2]}),
        "b": (False, None, None),
        "c": (True, 1.0, None),
        "d": (True, None, None),
    }


def test_a_project_key_posts_a_run_and_items_without_results_fail(agent_client, golden):
    dataset, _ = golden
    response = agent_client.post(
        runs_url(dataset),
        {"agent_version": "ci-123", "results": [{"item_id": "a", "passed": True}, {"item_id": "c", "passed": True}]},
        format="json",
    )

    assert response.status_code == 201
    data = response.json()
    assert data["missing"] == ["b", "d"]
    assert data["pass_rate"] == 0.5
    assert data["critical_pass_rate"] == 0.5
    assert data["reasons"][0] == "2 item(s) have no result and count as failed: b, d."
    assert DatasetRunResult.objects.count() == 2


def test_the_run_keeps_the_settings_it_was_judged_with(api_client_for, golden):
    dataset, _ = golden
    engineer = api_client_for("engineer")
    everything = [{"item_id": k, "passed": True} for k in "abcd"]
    run_id = engineer.post(runs_url(dataset), {"agent_version": "v1", "results": everything}, format="json").json()[
        "id"
    ]
    dataset.gate_mode = "confident"
    dataset.gate_pass_rate = 0.99
    dataset.save()

    kept = engineer.get(f"/api/v1/datasets/{dataset.pk}/runs/{run_id}").json()
    assert kept["gate"] == "pass"
    assert kept["gate_settings"]["mode"] == "observed"
    again = engineer.post(runs_url(dataset), {"agent_version": "v1", "results": everything}, format="json").json()
    assert again["gate"] == "fail"  # 4 items cannot show 99% with confidence
    assert again["needed_items"] == {"n": 381, "assumption": "zero_failures", "target": 0.99, "enough": False}


def test_confident_mode_through_the_api(api_client_for, project):
    items = [{"key": f"k{i:03}", "critical": i < 72} for i in range(100)]
    dataset, _ = make_version(project, items=items, gate_mode="confident")
    response = api_client_for("engineer").post(
        runs_url(dataset),
        {"agent_version": "v1", "results": [{"item_id": i["key"], "passed": True} for i in items]},
        format="json",
    )
    data = response.json()
    assert data["gate"] == "pass", data["reasons"]
    assert data["wilson_lower"] == pytest.approx(100 / (100 + 1.959963984540054**2))
    assert data["critical_lower"] == pytest.approx(0.025 ** (1 / 72))
    assert data["critical_needed_items"] == 72


@pytest.mark.parametrize(
    ("results", "field", "message"),
    [
        (
            [{"item_id": "a", "passed": True}, {"item_id": "zz", "passed": True}, {"item_id": "yy", "passed": False}],
            "results",
            "Unknown item ids: yy, zz.",
        ),
        (
            [{"item_id": "a", "passed": True}, {"item_id": "a", "passed": False}],
            "results[1].item_id",
            "Item 'a' already has a result at results[0].",
        ),
        ([{"item_id": "a", "passed": "yes"}], "results[0].passed", "Send true or false."),
        ([{"item_id": "a", "passed": True, "score": "high"}], "results[0].score", "Send a number or null."),
        ([{"item_id": "a", "passed": True, "score": True}], "results[0].score", "Send a number or null."),
        ([{"item_id": "", "passed": True}], "results[0].item_id", "An item id: text of 1 to 64 characters."),
        ([{"item_id": "x" * 65, "passed": True}], "results[0].item_id", "An item id: text of 1 to 64 characters."),
        ([{"item_id": "a", "passed": True, "verdict": 1}], "results[0]", "Unknown field(s): verdict."),
        (["a"], "results[0]", "Each result must be an object."),
        ({"a": True}, "results", "Send a list of results."),
    ],
)
def test_bad_results_are_refused_naming_the_field(api_client_for, golden, results, field, message):
    dataset, _ = golden
    response = api_client_for("engineer").post(
        runs_url(dataset), {"agent_version": "v1", "results": results}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][field] == [message]
    assert DatasetRun.objects.count() == 0


def test_bad_bodies_are_refused(api_client_for, golden):
    dataset, _ = golden
    engineer = api_client_for("engineer")
    ok = [{"item_id": "a", "passed": True}]

    def post(body):
        response = engineer.post(runs_url(dataset), body, format="json")
        assert response.status_code == 400
        return response.json()["errors"]

    assert "agent_version" in post({"results": ok})
    assert "agent_version" in post({"agent_version": "x" * 101, "results": ok})
    assert "agent_version" in post({"agent_version": "a\u0000b", "results": ok})
    assert "results" in post({"agent_version": "v1"})
    assert "colour" in post({"agent_version": "v1", "results": ok, "colour": "red"})
    assert "body" in post([ok])
    deep: object = 1
    for _ in range(70):
        deep = [deep]
    assert post({"agent_version": "v1", "results": [{"item_id": "a", "passed": True, "output": deep}]})
    assert DatasetRun.objects.count() == 0


def test_too_many_results(api_client_for, golden, monkeypatch):
    dataset, _ = golden
    monkeypatch.setattr(services_runs, "MAX_RUN_RESULTS", 3)
    results = [{"item_id": k, "passed": True} for k in "abcd"]
    response = api_client_for("engineer").post(
        runs_url(dataset), {"agent_version": "v1", "results": results}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"results": ["At most 3 results per run; got 4."]}


def test_roles_and_tenants(api_client_for, agent_client, other_agent_client, golden, other_project, other_org):
    dataset, _ = golden
    body = {"agent_version": "v1", "results": [{"item_id": "a", "passed": True}]}
    for role in ("annotator", "approver"):
        assert api_client_for(role).post(runs_url(dataset), body, format="json").status_code == 403
        assert api_client_for(role).get(f"/api/v1/datasets/{dataset.pk}/runs").status_code == 403
    # Another organization's person, another project's key: not found.
    stranger = api_client_for("admin", organization=other_org)
    assert stranger.post(runs_url(dataset), body, format="json").status_code == 404
    assert other_agent_client.post(runs_url(dataset), body, format="json").status_code == 404
    assert other_agent_client.get(f"/api/v1/datasets/{dataset.pk}/runs").status_code == 404
    # A key of another project in the same organization is refused too.
    from reviewapp import services as core_services
    from tests.factories import ProjectFactory

    sibling = ProjectFactory(organization=dataset.organization, slug="sibling")
    key = core_services.api_key_create(project=sibling, name="ci").raw
    from rest_framework.test import APIClient

    sibling_client = APIClient()
    sibling_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert sibling_client.post(runs_url(dataset), body, format="json").status_code == 404
    # A version number the dataset does not have.
    assert agent_client.post(runs_url(dataset, 2), body, format="json").status_code == 404
    assert DatasetRun.objects.count() == 0
    assert agent_client.post(runs_url(dataset), body, format="json").status_code == 201
    assert api_client_for("admin").get(f"/api/v1/datasets/{dataset.pk}/runs").status_code == 200
    run = DatasetRun.objects.get()
    assert stranger.get(f"/api/v1/datasets/{dataset.pk}/runs/{run.pk}").status_code == 404


def test_lists_and_one_run_with_paged_results(api_client_for, golden, project):
    dataset, version = golden
    first = make_run(dataset, version, {"a": True, "b": True, "c": True}, agent_version="v1")
    second = make_run(dataset, version, {"a": True, "b": True, "c": True, "d": True}, agent_version="v2")
    other_dataset, other_version = make_version(project, name="other")
    make_run(other_dataset, other_version, {"a": True})
    engineer = api_client_for("engineer")

    listed = engineer.get(f"/api/v1/datasets/{dataset.pk}/runs").json()
    assert [r["id"] for r in listed["results"]] == [second.pk, first.pk]
    assert [r["gate"] for r in listed["results"]] == ["pass", "fail"]
    assert [
        r["id"] for r in engineer.get(f"/api/v1/datasets/{dataset.pk}/runs?agent_version=v1").json()["results"]
    ] == [first.pk]
    by_version = engineer.get(runs_url(dataset)).json()
    assert [r["id"] for r in by_version["results"]] == [second.pk, first.pk]

    page = engineer.get(f"/api/v1/datasets/{dataset.pk}/runs/{second.pk}?limit=3").json()
    assert page["agent_version"] == "v2"
    assert [r["item_id"] for r in page["results"]] == ["a", "b", "c"]
    assert page["next"]
    rest = engineer.get(page["next"]).json()
    assert [r["item_id"] for r in rest["results"]] == ["d"]
    assert rest["next"] is None
    # A run of another dataset is not found under this one.
    assert engineer.get(f"/api/v1/datasets/{dataset.pk}/runs/{other_dataset.runs.get().pk}").status_code == 404
    assert engineer.get(f"/api/v1/datasets/{dataset.pk}/runs?cursor=bogus").status_code == 400


def test_compare_lists_regressions_first(api_client_for, project):
    items = [{"key": k, "critical": k == "e"} for k in "abcdef"]
    dataset, version = make_version(project, items=items)
    a = make_run(dataset, version, {"a": True, "b": False, "c": True, "d": False, "e": True, "f": True})
    b = make_run(dataset, version, {"a": False, "b": True, "c": True, "d": False, "e": False})  # f: no result
    response = api_client_for("engineer").get(f"/api/v1/datasets/{dataset.pk}/runs/{a.pk}/compare/{b.pk}")

    assert response.status_code == 200
    data = response.json()
    assert [(i["change"], i["item_id"]) for i in data["items"]] == [
        ("regression", "e"),  # critical first
        ("regression", "a"),
        ("regression", "f"),
        ("fix", "b"),
        ("still_failing", "d"),
    ]
    assert data["counts"] == {
        "regression": 3,
        "fix": 1,
        "still_failing": 1,
        "only_in_a": 0,
        "only_in_b": 0,
        "still_passing": 1,
    }
    assert data["same_version"] is True
    assert data["truncated"] is False
    assert data["items"][0] == {
        "change": "regression",
        "item_id": "e",
        "critical": True,
        "a_passed": True,
        "b_passed": False,
        "a_score": None,
        "b_score": None,
    }
