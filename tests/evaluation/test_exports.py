"""Exports: every format of both sources loads with Hugging Face `datasets` and pandas as it is,
hostile text round-trips, every row carries its lineage, rows stream a page at a time, and
only the right callers of the right organization get them."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.test import AsyncRequestFactory, Client

from evaluation import exports, selectors_exports
from evaluation.export_responses import export_response
from evaluation.models import Dataset, DatasetVersion, DatasetVersionItem
from labeling import services as labeling_services
from tests.factories import ConversationFactory
from tests.labeling.factories import add_items, make_queue

HOSTILE = 'He said "no", then\nleft; 50,00 € — ✓ 𝄞 \t tab\r\nCRLF'
FORMULA = '=HYPERLINK("http://x","y")'


def _messages(n: int) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"{HOSTILE} #{n}"},
        {"role": "assistant", "content": [{"type": "text", "text": f'Refund {n}, "quoted", ok'}]},
    ]


def _final_queue(project, member, n: int = 3):
    """A queue with `n` completed items labelled by two people (overlap 2), and one open item."""
    queue = make_queue(project, annotations_per_item=2)
    items = add_items(queue, n + 1)
    for i, item in enumerate(items):
        conversation = item.conversation
        conversation.messages = _messages(i)
        conversation.external_id = FORMULA if i == 0 else f"ext-{i}"
        conversation.tags = ["refund", "vip"] if i % 2 == 0 else []
        conversation.save()
    people = [member("annotator", username="ann-a"), member("annotator", username="ann-b")]
    for item in items[:n]:
        for person in people:
            assignment = labeling_services.item_claim(queue=queue, user=person)
            assert assignment is not None and assignment.item_id == item.pk
            labeling_services.label_submit(
                item=assignment.item, user=person, answers={"quality": "good", "notes": HOSTILE}
            )
    return queue


def _key(i: int) -> str:
    # Keys are hex digests. CSV carries no types: a reader infers them, so an all-digit key (or
    # external id) would come back as a number from CSV alone (README "Exports").
    return f"{i:x}abc{i:011x}"


def _dataset_version(project, n: int = 3, *, number: int = 1) -> DatasetVersion:
    dataset = Dataset.objects.get_or_create(organization=project.organization, project=project, name="Golden")[0]
    version = DatasetVersion.objects.create(
        organization=project.organization, dataset=dataset, number=number, content_hash="0" * 64, item_count=n
    )
    for i in range(n):
        conversation = ConversationFactory(project=project, external_id=f"golden-{number}-{i}")
        DatasetVersionItem.objects.create(
            version=version,
            key=_key(i),
            conversation=conversation,
            input_messages=_messages(i)[:2],
            # The last item has no accepted turn: the chat format leaves it out.
            reference_output=None if i == n - 1 else {"role": "assistant", "content": f'Refund {i}, "quoted"'},
            expected_labels={"quality": "good", "notes": HOSTILE},
            critical=i == 0,
            tags=["refund"] if i else [],
            split="test" if i else "train",
            lineage={
                "label_ids": [10 + i, 20 + i],
                "annotators": ["ann-a", "ann-b"],
                "reviewer": None,
                "final_source": "agreement",
                "label_source": "judge" if i == 1 else "human",
                "schema": {"name": "Support quality", "version": 2},
                "queue_id": 7,
            },
        )
    return version


def _body(response: Any) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def _load_hf(path: str, fmt: str, tmp_path, monkeypatch) -> list[dict[str, Any]]:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    builder = {"jsonl": "json", "openai": "json", "csv": "csv", "parquet": "parquet"}[fmt]
    loaded = datasets.load_dataset(builder, data_files=path, split="train", cache_dir=str(tmp_path / "hf-cache"))
    return loaded.to_list()


def _load_pandas(path: str, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "csv":
        return pd.read_csv(path)
    return pd.read_json(path, lines=True)


SOURCES = ["queue-items", "queue-labels", "dataset"]


def _export(source: str, fmt: str, *, project, member, api_client_for) -> tuple[bytes, Any]:
    client = api_client_for("engineer")
    if source == "dataset":
        version = _dataset_version(project)
        response = client.get(f"/api/v1/datasets/{version.dataset_id}/versions/1/export?format={fmt}")
    else:
        queue = _final_queue(project, member)
        rows = source.split("-")[1]
        response = client.get(f"/api/v1/queues/{queue.pk}/export?format={fmt}&rows={rows}")
    assert response.status_code == 200, response
    return _body(response), response


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("source", SOURCES)
def test_every_format_loads_with_datasets_and_pandas_and_round_trips(
    source, fmt, project, member, api_client_for, tmp_path, monkeypatch
):
    body, response = _export(source, fmt, project=project, member=member, api_client_for=api_client_for)
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(body)
    assert response["Content-Type"] == exports.CONTENT_TYPES[fmt]
    assert response["Content-Disposition"].startswith('attachment; filename="')
    assert response["Content-Disposition"].endswith(f'.{fmt}"')

    rows = _load_hf(str(path), fmt, tmp_path, monkeypatch)
    frame = _load_pandas(str(path), fmt)
    expected = 6 if source == "queue-labels" else 3
    assert len(rows) == len(frame) == expected
    assert list(frame.columns) == list(exports.NAMES)
    for row in rows:
        assert list(row) == list(exports.NAMES)
        messages = json.loads(row["input_messages"])
        assert messages[1]["content"].startswith(HOSTILE)
        answers = json.loads(row["answers"])
        assert answers["notes"] == HOSTILE
        # JSON null is an empty cell to a CSV reader: missing either way.
        reference = json.loads(row["reference_output"]) if row["reference_output"] is not None else None
        if reference is not None:
            assert '"quoted"' in json.dumps(reference["content"], ensure_ascii=False).replace('\\"', '"')
        labels = json.loads(row["label_ids"]) if fmt == "csv" else row["label_ids"]
        annotators = json.loads(row["annotators"]) if fmt == "csv" else row["annotators"]
        assert len(labels) == len(annotators) >= 1
        assert set(annotators) <= {"ann-a", "ann-b"}
        assert row["label_source"] in ("human", "judge")
        assert row["schema_name"] == "Support quality"
    externals = [r["external_id"] for r in rows]
    if source != "dataset":
        # A formula-like cell gets a leading apostrophe in CSV only; other formats keep it as is.
        assert (("'" + FORMULA) if fmt == "csv" else FORMULA) in externals
        assert all(r["item_id"] is None and r["dataset_version"] is None for r in rows)
        assert all(r["queue_item_id"] is not None and r["conversation_id"] is not None for r in rows)
    else:
        assert [r["item_id"] for r in rows] == [_key(i) for i in range(3)]
        assert [r["dataset_version"] for r in rows] == [1, 1, 1]
        assert [r["critical"] for r in rows] == [True, False, False]
        assert [r["split"] for r in rows] == ["train", "test", "test"]
        assert [r["label_source"] for r in rows] == ["human", "judge", "human"]
        assert [r["schema_version"] for r in rows] == [2, 2, 2]
        assert [r["queue_id"] for r in rows] == [7, 7, 7]
        assert externals == ["golden-1-0", "golden-1-1", "golden-1-2"]
        tags = [json.loads(r["tags"]) if fmt == "csv" else r["tags"] for r in rows]
        assert tags == [[], ["refund"], ["refund"]]


@pytest.mark.parametrize("source", SOURCES)
def test_openai_format_ends_with_the_accepted_turn_and_loads(
    source, project, member, api_client_for, tmp_path, monkeypatch
):
    body, _ = _export(source, "openai", project=project, member=member, api_client_for=api_client_for)
    path = tmp_path / "chat.jsonl"
    path.write_bytes(body)
    rows = _load_hf(str(path), "openai", tmp_path, monkeypatch)
    frame = _load_pandas(str(path), "openai")
    # The dataset's last item has no accepted turn: skipped. Queue items end with the agent's.
    assert len(rows) == len(frame) == {"queue-items": 3, "queue-labels": 6, "dataset": 2}[source]
    assert list(frame.columns) == ["messages"]
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles[-1] == "assistant" and roles[:2] == ["system", "user"]
        assert row["messages"][1]["content"].startswith(HOSTILE)
        assert '"quoted"' in row["messages"][-1]["content"]


def test_chat_rows_without_an_assistant_turn_are_counted():
    progress = exports.Progress()
    rows = [
        {"input_messages": [{"role": "user", "content": "hi"}], "reference_output": None},
        {"input_messages": [{"role": "tool", "content": "x"}], "reference_output": "Written by a person"},
    ]
    lines = b"".join(exports.stream("openai", [rows], progress)).decode().splitlines()
    assert (progress.rows, progress.skipped) == (1, 1)
    assert json.loads(lines[0]) == {"messages": [{"role": "assistant", "content": "Written by a person"}]}


def test_empty_exports_are_valid_files(project, api_client_for, tmp_path):
    queue = make_queue(project)
    client = api_client_for("engineer")
    for fmt in exports.FORMATS:
        body = _body(client.get(f"/api/v1/queues/{queue.pk}/export?format={fmt}"))
        if fmt == "parquet":
            table = pq.read_table(io.BytesIO(body))
            assert table.num_rows == 0 and table.schema.equals(exports.ARROW_SCHEMA)
        elif fmt == "csv":
            assert body.decode().splitlines() == [",".join(exports.NAMES)]
        else:
            assert body == b""


def test_rows_are_read_a_page_at_a_time(project, member, monkeypatch, django_assert_num_queries):
    queue = _final_queue(project, member, n=5)
    version = _dataset_version(project, n=5)
    monkeypatch.setattr(selectors_exports, "CHUNK_SIZE", 2)

    batches = selectors_exports.dataset_version_batches(version=version)
    with django_assert_num_queries(1):
        assert len(next(batches)) == 2  # the first page only: nothing read ahead
    with django_assert_num_queries(2):  # the last page is short: no query after it
        assert [len(b) for b in batches] == [2, 1]

    # Queue items: each page of items, then the labels of that page.
    with django_assert_num_queries(6):
        assert [len(b) for b in selectors_exports.queue_batches(queue=queue)] == [2, 2, 1]
    # Ten labels in five full pages: a sixth query finds the end.
    with django_assert_num_queries(11):
        assert [len(b) for b in selectors_exports.queue_batches(queue=queue, rows="labels")] == [2, 2, 2, 2, 2]


def test_parquet_has_one_row_group_per_page(project, monkeypatch, api_client_for):
    version = _dataset_version(project, n=5)
    monkeypatch.setattr(selectors_exports, "CHUNK_SIZE", 2)
    response = api_client_for("engineer").get(f"/api/v1/datasets/{version.dataset_id}/versions/1/export?format=parquet")
    chunks = list(response.streaming_content)
    parquet = pq.ParquetFile(io.BytesIO(b"".join(chunks)))
    assert parquet.metadata.num_row_groups == 3
    assert len(chunks) >= 3  # sent as made: header and first group, ..., footer


def test_under_asgi_chunks_are_pulled_one_at_a_time():
    """Django would read a sync iterator into a list under ASGI; the export hands it an async
    one that takes a chunk only when the previous one was sent."""
    pulled: list[int] = []

    def chunks():
        for i in range(3):
            pulled.append(i)
            yield f"{i}\n".encode()

    request = AsyncRequestFactory().get("/api/v1/queues/1/export")
    response = export_response(request, fmt="jsonl", stem="x", chunks=chunks())
    assert response.is_async

    async def consume() -> list[tuple[bytes, list[int]]]:
        return [(chunk, list(pulled)) async for chunk in response]

    assert asyncio.run(consume()) == [(b"0\n", [0]), (b"1\n", [0, 1]), (b"2\n", [0, 1, 2])]


def test_head_answers_headers_only(project, api_client_for):
    queue = make_queue(project)
    response = api_client_for("admin").head(f"/api/v1/queues/{queue.pk}/export?format=csv")
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Disposition"] == f'attachment; filename="queue-{queue.pk}-Support-QA-items.csv"'


def test_bad_parameters_are_named(project, api_client_for):
    queue = make_queue(project)
    version = _dataset_version(project, n=1)
    client = api_client_for("engineer")
    response = client.get(f"/api/v1/queues/{queue.pk}/export?format=xlsx&rows=all")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"format", "rows"}
    response = client.get(f"/api/v1/datasets/{version.dataset_id}/versions/1/export?format=pdf")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"format"}


@pytest.mark.parametrize(
    ("role", "queue_status", "dataset_status"),
    [
        ("annotator", 403, 403),
        ("approver", 403, 403),
        ("engineer", 200, 200),
        ("admin", 200, 200),
    ],
)
def test_role_matrix(role, queue_status, dataset_status, project, api_client_for):
    queue = make_queue(project)
    version = _dataset_version(project, n=1)
    client = api_client_for(role)
    assert client.get(f"/api/v1/queues/{queue.pk}/export").status_code == queue_status
    assert client.get(f"/api/v1/datasets/{version.dataset_id}/versions/1/export").status_code == dataset_status


def test_a_project_key_exports_its_own_projects_datasets_only(
    project, org, agent_client, other_project, other_agent_client
):
    from tests.factories import ProjectFactory

    mine = _dataset_version(project, n=1)
    sibling = _dataset_version(ProjectFactory(organization=org, slug="sales"), n=1)
    queue = make_queue(project)
    assert agent_client.get(f"/api/v1/datasets/{mine.dataset_id}/versions/1/export").status_code == 200
    assert agent_client.get(f"/api/v1/datasets/{sibling.dataset_id}/versions/1/export").status_code == 404
    assert agent_client.get(f"/api/v1/datasets/{mine.dataset_id}/versions/2/export").status_code == 404
    assert agent_client.get(f"/api/v1/queues/{queue.pk}/export").status_code == 403  # labels: people only
    assert other_agent_client.get(f"/api/v1/datasets/{mine.dataset_id}/versions/1/export").status_code == 404


def test_another_organizations_ids_are_not_found(project, other_project, member, api_client_for, other_org):
    queue = make_queue(other_project)
    version = _dataset_version(other_project, n=1)
    client = api_client_for("admin")
    assert client.get(f"/api/v1/queues/{queue.pk}/export").status_code == 404
    assert client.get(f"/api/v1/datasets/{version.dataset_id}/versions/1/export").status_code == 404
    assert api_client_for("admin", organization=other_org).get(f"/api/v1/queues/{queue.pk}/export").status_code == 200


# --- Browser ---------------------------------------------------------------------------------


def _signed_in(member, role: str, **kwargs: Any) -> Client:
    client = Client()
    client.force_login(member(role, **kwargs))
    return client


def test_the_queue_list_offers_managers_a_download(project, member):
    queue = make_queue(project)
    engineer = _signed_in(member, "engineer")
    page = engineer.get("/labeling/").content.decode()
    assert f'action="/evaluation/queues/{queue.pk}/export"' in page
    assert '<option value="parquet">' in page and '<option value="labels">' in page
    annotator = _signed_in(member, "annotator")
    assert "/export" not in annotator.get("/labeling/").content.decode()


def test_browser_downloads_stream_the_same_rows(project, member, other_project, tmp_path):
    queue = _final_queue(project, member, n=2)
    version = _dataset_version(project, n=2)
    engineer = _signed_in(member, "engineer")

    response = engineer.get(f"/evaluation/queues/{queue.pk}/export?format=parquet&rows=labels")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"] == f'attachment; filename="queue-{queue.pk}-Support-QA-labels.parquet"'
    assert pq.read_table(io.BytesIO(_body(response))).num_rows == 4

    response = engineer.get(f"/evaluation/datasets/{version.dataset_id}/versions/1/export?format=csv")
    frame = pd.read_csv(io.BytesIO(_body(response)))
    assert list(frame["item_id"]) == [_key(0), _key(1)]

    assert engineer.get(f"/evaluation/queues/{queue.pk}/export?format=xlsx").status_code == 400
    assert _signed_in(member, "annotator").get(f"/evaluation/queues/{queue.pk}/export").status_code == 403
    foreign_queue = make_queue(other_project)
    foreign_version = _dataset_version(other_project, n=1)
    assert engineer.get(f"/evaluation/queues/{foreign_queue.pk}/export").status_code == 404
    assert engineer.get(f"/evaluation/datasets/{foreign_version.dataset_id}/versions/1/export").status_code == 404


# --- Command line ----------------------------------------------------------------------------


def test_export_dataset_command_writes_the_file_with_progress(project, member, tmp_path):
    version = _dataset_version(project, n=3)
    _dataset_version(project, n=2, number=2)
    queue = _final_queue(project, member, n=2)
    out, err = io.StringIO(), io.StringIO()

    call_command("export_dataset", "support/Golden", "--dataset-version", "1", "--format", "openai",
                 "--out", str(tmp_path / "v1.jsonl"), stdout=out, stderr=err)  # fmt: skip
    assert len((tmp_path / "v1.jsonl").read_text().splitlines()) == 2
    assert "2,000" not in err.getvalue() and "rows/s" in err.getvalue()
    assert "Exported 2 rows of dataset" in err.getvalue() and "1 without an accepted assistant turn" in err.getvalue()

    call_command("export_dataset", str(version.dataset_id), "--format", "parquet", "--out", str(tmp_path / "v.parquet"),
                 stdout=out, stderr=err)  # fmt: skip
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.column("dataset_version").to_pylist() == [2, 2]  # the newest by default

    call_command("export_dataset", "--queue", str(queue.pk), "--rows", "labels", "--format", "csv",
                 "--out", str(tmp_path / "q.csv"), "--no-progress", stdout=out, stderr=err)  # fmt: skip
    assert len(pd.read_csv(tmp_path / "q.csv")) == 4

    with pytest.raises(CommandError, match="No dataset 'support/Nope'"):
        call_command("export_dataset", "support/Nope", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="No queue"):
        call_command("export_dataset", "--queue", "999999", stdout=out, stderr=err)


def test_a_dataset_frozen_by_the_service_exports_its_lineage(project, api_client_for):
    """The lineage the dataset service writes (not hand-made rows) reaches every export row:
    rubric name and version, queue, conversation, who made the label."""
    from tests.evaluation.factories_datasets import make_frozen_dataset
    from tests.factories import ConversationFactory

    conversation = ConversationFactory(project=project, external_id="lineage-1")
    dataset = make_frozen_dataset(project, conversation)
    item = dataset.versions.get(number=1).items.get()
    response = api_client_for("engineer").get(f"/api/v1/datasets/{dataset.pk}/versions/1/export?format=jsonl")
    assert response.status_code == 200
    [row] = [json.loads(line) for line in _body(response).splitlines()]
    assert row["item_id"] == item.key
    assert row["external_id"] == "lineage-1"
    assert row["conversation_id"] == conversation.pk
    assert row["schema_name"] == item.lineage["rubric"]["name"] and row["schema_name"]
    assert row["schema_version"] == item.lineage["rubric"]["version"]
    assert row["queue_id"] == item.queue_item.queue_id
    assert row["label_source"] == "human"
    assert json.loads(row["answers"]) == {"quality": "good"}  # varying shapes are JSON text
