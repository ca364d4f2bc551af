"""A dataset version's export takes three roads to one set of rows: on PostgreSQL the JSONL lines
are built by the database (evaluation/sql.py), Parquet reads pages as columns, and everything
else (CSV, the chat format, SQLite's JSONL) builds a dict per row. On hostile rows (unicode,
control characters, deep JSON, empty lists, missing or odd lineage, no conversation) the fast
roads give what the dict road gives: the same bytes, so the same keys in the same order and the
same values and types."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation import exports, selectors_exports
from evaluation.models import Dataset, DatasetVersion, DatasetVersionItem
from tests.factories import ConversationFactory

# Every control character but NUL (jsonb cannot hold \u0000), DEL, quotes, backslashes, and
# characters escaped by some encoders and not others (U+2028, U+2029, BOM, a lone combining mark).
CONTROLS = "".join(chr(c) for c in range(1, 32)) + '\x7f"\\/'
UNICODE = "é ✓ 𝄞 עברית \u2028\u2029\ufeff e\u0301 🇫🇷 " + CONTROLS


def _deep(depth: int) -> Any:
    value: Any = {"text": UNICODE, "n": [1, 2.5, -3, True, None]}
    for level in range(depth):
        value = {"level": level, "inner": [value]}
    return value


# (lineage, conversation external id or None for no conversation, other fields): each row
# stresses one fallback of exports.dataset_row.
ROWS: list[tuple[dict[str, Any], str | None, dict[str, Any]]] = [
    ({}, None, {"input_messages": [], "tags": [], "expected_labels": {}, "reference_output": None}),
    (
        {
            "label_ids": [1, 2],
            "annotators": ["ann-a", UNICODE],
            "labels": [{"label_id": 1, "annotator": UNICODE, "answers": {"q": UNICODE}, "created_at": "2026"}],
            "reviewer": UNICODE,
            "final_source": "review",
            "made_by": "judge",
            "label_source": "human",
            "rubric": {"name": UNICODE, "version": 12},
            "schema": {"name": "ignored", "version": 3},
            "queue_id": 7,
            "external_id": "ignored: the conversation has one",
        },
        UNICODE,
        {"input_messages": [{"role": "user", "content": UNICODE}], "tags": [UNICODE, "x"]},
    ),
    (
        # Flat schema keys, `source`, ints spelt as strings, a conversation gone: the lineage's id.
        {"schema_name": "flat", "schema_version": "4", "source": "judge", "queue_id": "-12", "external_id": 42},
        None,
        {"reference_output": {"role": "assistant", "content": [{"type": "text", "text": UNICODE}]}},
    ),
    (
        # Not what the service writes: wrong types everywhere.
        {
            "label_ids": "1,2",
            "annotators": {"a": 1},
            "labels": {"not": "a list"},
            "reviewer": "",
            "final_source": {"nested": [1]},
            "label_source": 1,
            "rubric": "not an object",
            "schema": {"name": "", "version": 1.5},
            "queue_id": "--3",
            "external_id": None,
        },
        "",
        {"split": "", "tags": "not a list", "expected_labels": _deep(3)},
    ),
    (
        # Lists of mixed JSON (written out as stored in JSONL), numbers too long for 64 bits.
        {
            "label_ids": [1, "2", None, 3.5, True, [4]],
            "annotators": [1, None, "b", {"c": [UNICODE]}],
            "labels": [],
            "rubric": {"name": None, "version": "99999999999999999999"},
            "queue_id": True,
            "final_source": 5,
        },
        "ext-4",
        {"input_messages": [_deep(60)], "tags": [1, None, "t"], "critical": True, "split": "dev"},
    ),
    (
        {"label_ids": [], "annotators": [], "queue_id": 3.0, "schema_version": -2, "reviewer": None},
        '=HYPERLINK("x")\t',
        {"key": "k-" + UNICODE[:20], "expected_labels": {"notes": UNICODE, "list": [], "empty": {}}},
    ),
]


def _hostile_version(project) -> DatasetVersion:
    dataset = Dataset.objects.create(organization=project.organization, project=project, name="Hostile")
    version = DatasetVersion.objects.create(
        organization=project.organization, dataset=dataset, number=3, content_hash="0" * 64, item_count=len(ROWS)
    )
    for i, (lineage, external_id, fields) in enumerate(ROWS):
        conversation = (
            ConversationFactory(project=project, external_id=external_id) if external_id is not None else None
        )
        values = {
            "key": f"key-{i}",
            "input_messages": [{"role": "user", "content": f"item {i}"}],
            "reference_output": {"role": "assistant", "content": "ok"},
            "expected_labels": {"q": i},
            "tags": ["t"],
            "split": "train",
            **fields,
        }
        DatasetVersionItem.objects.create(version=version, conversation=conversation, lineage=lineage, **values)
    return version


def _lines(body: bytes) -> list[dict[str, Any]]:
    # Split on \n only: a JSON string may hold U+2028, which str.splitlines() splits on.
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body[:-1].split(b"\n")]


def _dict_road_jsonl(version: DatasetVersion) -> bytes:
    return b"".join(exports.write_jsonl(selectors_exports.dataset_version_batches(version=version), exports.Progress()))


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_builds_the_same_jsonl_lines_as_python(project, monkeypatch):
    version = _hostile_version(project)
    monkeypatch.setattr(selectors_exports, "CHUNK_SIZE", 4)  # two pages, the last one short
    expected = _dict_road_jsonl(version)
    progress = exports.Progress()

    body = b"".join(selectors_exports.dataset_version_chunks(version=version, fmt="jsonl", progress=progress))

    assert progress.rows == len(ROWS)
    rows = _lines(body)
    assert [list(row) for row in rows] == [list(exports.NAMES)] * len(ROWS)
    assert rows == _lines(expected)
    # Same types too (1 == 1.0 == True in Python): compared as values with their types.
    typed = [[(k, type(v).__name__, v) for k, v in row.items()] for row in rows]
    assert typed == [[(k, type(v).__name__, v) for k, v in row.items()] for row in _lines(expected)]
    assert body == expected  # and, as it happens, byte for byte


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_hostile_rows_read_as_the_fallbacks_say(project):
    """What the three roads agree on is right: a few of the fallbacks, from the database's lines."""
    version = _hostile_version(project)
    body = b"".join(selectors_exports.dataset_version_chunks(version=version, fmt="jsonl"))
    rows = _lines(body)

    empty, full, flat, odd, mixed, last = rows
    assert (empty["external_id"], empty["conversation_id"], empty["queue_id"]) == (None, None, None)
    assert (empty["label_ids"], empty["annotators"], empty["tags"], empty["label_details"]) == ([], [], [], "[]")
    assert (empty["input_messages"], empty["reference_output"], empty["answers"]) == ("[]", "null", "{}")
    assert (empty["label_source"], empty["schema_name"], empty["schema_version"]) == ("human", None, None)
    assert full["external_id"] == UNICODE and full["reviewer"] == UNICODE
    assert json.loads(full["input_messages"])[0]["content"] == UNICODE
    assert (full["label_source"], full["schema_name"], full["schema_version"], full["queue_id"]) == (
        "judge",
        UNICODE,
        12,
        7,
    )
    assert (flat["external_id"], flat["conversation_id"], flat["schema_version"], flat["queue_id"]) == (
        "42",
        None,
        4,
        -12,
    )
    assert flat["label_source"] == "judge" and flat["schema_name"] == "flat"
    assert (odd["external_id"], odd["reviewer"], odd["split"], odd["queue_id"], odd["schema_name"]) == (None,) * 5
    assert odd["final_source"] == '{"nested": [1]}' and odd["schema_version"] is None
    assert (odd["label_ids"], odd["annotators"], odd["tags"], odd["label_details"]) == ([], [], [], "[]")
    assert mixed["label_ids"] == [1, "2", None, 3.5, True, [4]] and mixed["tags"] == [1, None, "t"]
    assert (mixed["schema_version"], mixed["queue_id"], mixed["final_source"]) == (None, None, "5")
    assert json.loads(mixed["input_messages"]) == [_deep(60)] and mixed["critical"] is True
    assert last["item_id"] == "k-" + UNICODE[:20] and last["schema_version"] == -2 and last["queue_id"] is None


@pytest.mark.django_db
def test_parquet_read_as_columns_holds_the_rows_python_builds(project, monkeypatch):
    version = _hostile_version(project)
    monkeypatch.setattr(selectors_exports, "CHUNK_SIZE", 4)
    expected = pa.Table.from_batches(
        [exports.record_batch(batch) for batch in selectors_exports.dataset_version_batches(version=version)]
    )
    progress = exports.Progress()

    body = b"".join(selectors_exports.dataset_version_chunks(version=version, fmt="parquet", progress=progress))

    parquet = pq.ParquetFile(io.BytesIO(body))
    table = parquet.read()
    assert progress.rows == len(ROWS) and parquet.metadata.num_row_groups == 2
    assert table.schema.equals(exports.ARROW_SCHEMA)
    assert table.to_pylist() == expected.to_pylist()
    assert table.equals(expected)


@pytest.mark.django_db
def test_every_format_of_the_hostile_rows_is_exported(project):
    """CSV and the chat format keep the dict road, and SQLite's JSONL too: still the same rows."""
    version = _hostile_version(project)
    jsonl = b"".join(selectors_exports.dataset_version_chunks(version=version, fmt="jsonl"))
    assert jsonl == _dict_road_jsonl(version)
    csv = b"".join(selectors_exports.dataset_version_chunks(version=version, fmt="csv")).decode()
    assert csv.splitlines()[0] == ",".join(exports.NAMES)
    chat = _lines(b"".join(selectors_exports.dataset_version_chunks(version=version, fmt="openai")))
    assert len(chat) == 5  # the row without an accepted assistant turn is left out
    assert chat[1]["messages"][-1]["content"] == UNICODE


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_database_lines_are_read_a_page_at_a_time(project, monkeypatch, django_assert_num_queries):
    version = _hostile_version(project)
    monkeypatch.setattr(selectors_exports, "CHUNK_SIZE", 2)

    chunks = selectors_exports.dataset_version_chunks(version=version, fmt="jsonl")
    with django_assert_num_queries(1):
        assert next(chunks).count(b"\n") == 2  # the first page only: nothing read ahead
    with django_assert_num_queries(3):  # the last page is full: one more query finds the end
        assert [c.count(b"\n") for c in chunks] == [2, 2]


@pytest.mark.django_db
def test_parquet_columns_are_read_a_page_at_a_time(project, monkeypatch, django_assert_num_queries):
    version = _hostile_version(project)
    monkeypatch.setattr(selectors_exports, "CHUNK_SIZE", 4)

    pages = selectors_exports.dataset_version_columns(version=version)
    with django_assert_num_queries(1):
        first = next(pages)
    assert [len(column) for column in first.values()] == [4] * len(first)
    with django_assert_num_queries(1):  # the last page is short: no query after it
        assert [len(page["key"]) for page in pages] == [2]
