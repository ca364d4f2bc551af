"""Exports, pure (no ORM): the one fixed row shape every export has, the rows built from a
dataset version's items or a queue's items and labels, and the four writers (JSONL, CSV,
Parquet, OpenAI chat fine-tuning JSONL) that turn batches of rows into chunks of bytes.

Every row of every export has the same keys with the same types (`COLUMNS`), whatever its
source, so a file loads with Hugging Face `datasets` and pandas without a schema or fix-up:
- values whose shape the exporter does not control (messages, answers, a reference output, the
  per-label details) are JSON text in every format: their keys and types vary from row to row
  (a message's `content` is a string or a list of parts; rubrics differ), and a columnar reader
  infers one type per column, so a native nested value would load for one file and fail for
  the next;
- lists of scalars (`label_ids`, `annotators`, `tags`) are native lists in JSONL and Parquet,
  JSON text in CSV;
- in CSV a text cell that a spreadsheet would run as a formula (starting with = + - @, a tab or
  a carriage return) is written with a leading apostrophe (OWASP's advice); JSON-text cells
  start with [ { or " and are never touched, so messages and answers round-trip exactly.

The writers hold one batch at a time: memory stays flat however many rows are exported.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("jsonl", "csv", "parquet", "openai")
ROW_MODES = ("items", "labels")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "openai": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
EXTENSIONS = {"jsonl": "jsonl", "openai": "openai.jsonl", "csv": "csv", "parquet": "parquet"}

# Who made a label: a person (every queue label) or a judge (a dataset item whose reference
# came from an automated grader, as its lineage says).
HUMAN = "human"
JUDGE = "judge"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str", "int", "bool", "ints", "strs", "json"
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("item_id", "str", "the dataset item's key (stable across versions); null in queue exports"),
    Column("dataset_id", "int", "the dataset; null in queue exports"),
    Column("dataset_version", "int", "the dataset version's number; null in queue exports"),
    Column("queue_id", "int", "the queue the labels were made in, when known"),
    Column("queue_item_id", "int", "the queue item, when known"),
    Column("conversation_id", "int", "the source conversation, when it still exists"),
    Column("external_id", "str", "the conversation's id in the agent's system"),
    Column("input_messages", "json", "the conversation before the turn under test, a JSON list of messages"),
    Column("reference_output", "json", "the accepted assistant turn (JSON), null when there is none"),
    Column("answers", "json", "final answers (items), the label's answers (labels), expected labels (datasets)"),
    Column("label_ids", "ints", "the labels that made the row"),
    Column("annotators", "strs", "who made those labels (usernames)"),
    Column("reviewer", "str", "who reviewed the item, when it was reviewed"),
    Column("final_source", "str", "how the final answer was reached: agreement, review or single"),
    Column("label_source", "str", "human or judge"),
    Column("schema_name", "str", "the rubric (label schema)"),
    Column("schema_version", "int", "the rubric version the labels answered"),
    Column("critical", "bool", "a critical dataset item (false in queue exports)"),
    Column("tags", "strs", "the item's tags (a queue item: its conversation's tags)"),
    Column("split", "str", "train, dev or test; null in queue exports"),
    Column("label_details", "json", "a JSON list of {label_id, annotator, answers, created_at} per label"),
)
NAMES = tuple(c.name for c in COLUMNS)
_ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "ints": pa.list_(pa.int64()),
    "strs": pa.list_(pa.string()),
    "json": pa.string(),
}
ARROW_SCHEMA = pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind], nullable=True) for c in COLUMNS])
_JSON_COLUMNS = tuple(c.name for c in COLUMNS if c.kind == "json")
_LIST_COLUMNS = tuple(c.name for c in COLUMNS if c.kind in ("ints", "strs"))
_TEXT_COLUMNS = tuple(c.name for c in COLUMNS if c.kind == "str")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class JsonText(str):
    """A value that is already JSON text, as the database spelled it (a jsonb column read as
    text): written as it is. A million rows decoded and encoded again cost more than the whole
    rest of an export."""

    __slots__ = ()


def json_text(text: str | None) -> JsonText:
    return JsonText("null" if text is None else text)


# Built once: json.dumps with any keyword builds a new encoder on every call. Stored JSON never
# holds NaN (refused at ingest), so allow_nan=False only guards the format.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dumps(value: Any) -> str:
    return value if isinstance(value, JsonText) else _ENCODE(value)


def loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, JsonText) else value


@dataclass
class Progress:
    """Counted while a writer runs: rows written and (OpenAI format) rows skipped for want of
    an accepted assistant turn."""

    rows: int = 0
    skipped: int = 0


# --- Rows -----------------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _strs(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        return []
    return [v if isinstance(v, str) else dumps(v) for v in value if v is not None]


def _ints(value: Any) -> list[int]:
    if not isinstance(value, list | tuple):
        return []
    return [i for i in (_int_or_none(v) for v in value) if i is not None]


def split_turn(messages: Any) -> tuple[list[Any], dict[str, Any] | None]:
    """The conversation before its last assistant turn, and that turn (the one people label)."""
    if not isinstance(messages, list):
        return [], None
    for index in range(len(messages) - 1, -1, -1):
        m = messages[index]
        if isinstance(m, dict) and m.get("role") == "assistant":
            return messages[:index], m
    return list(messages), None


def _int_text(value: Any) -> int | None:
    """An int from a JSON scalar read as text by the database ("3"), or an int."""
    if isinstance(value, str) and value.isascii() and value.removeprefix("-").isdigit() and len(value) < 19:
        return int(value)
    return _int_or_none(value)


def dataset_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A frozen dataset item, from what selectors_exports reads in SQL: the item's columns, its
    `dataset_id` and `dataset_version`, the conversation's `external_id` (else the lineage's),
    and the lineage's fields (`label_ids`, `annotators`, `label_details`, `reviewer`,
    `final_source`, `label_source`, `schema_name`, `schema_version`, `queue_id`). JSON values
    and lists may come as JsonText, written out unread."""
    return {
        "item_id": record["key"],
        "dataset_id": record["dataset_id"],
        "dataset_version": record["dataset_version"],
        "queue_id": _int_text(record.get("queue_id")),
        "queue_item_id": record.get("queue_item_id"),
        "conversation_id": record.get("conversation_id"),
        "external_id": _str_or_none(record.get("external_id")),
        "input_messages": record.get("input_messages", []),
        "reference_output": record.get("reference_output"),
        "answers": record.get("expected_labels", {}),
        "label_ids": _list_or(record.get("label_ids"), _ints),
        "annotators": _list_or(record.get("annotators"), _strs),
        "reviewer": _str_or_none(record.get("reviewer")),
        "final_source": _str_or_none(record.get("final_source")),
        "label_source": JUDGE if record.get("label_source") == JUDGE else HUMAN,
        "schema_name": _str_or_none(record.get("schema_name")),
        "schema_version": _int_text(record.get("schema_version")),
        "critical": bool(record.get("critical")),
        "tags": _list_or(record.get("tags"), _strs),
        "split": _str_or_none(record.get("split")),
        "label_details": _list_or(record.get("label_details"), list),
    }


def dataset_record_batch(page: Mapping[str, Sequence[Any]], *, dataset_id: int, dataset_version: int) -> pa.RecordBatch:
    """The Parquet row group of a page of dataset items read as columns (one list per field,
    no dict per row): the values `record_batch` makes of the same items' `dataset_row`s.
    `page` holds what selectors_exports reads: `key`, `queue_item_id`, `conversation_id`,
    `critical`, `split`, `conversation_external_id` and `lineage_external_id`, the JSON columns
    and lineage lists as the database's JSON text (None for SQL NULL: `input_messages`,
    `reference_output`, `expected_labels`, `tags`, `label_ids`, `annotators`, `label_details`),
    and the lineage scalars as text (`reviewer`, `final_source`, `label_source`, `schema_name`,
    `schema_version`, `queue_id`)."""
    rows = len(page["key"])
    external = zip(page["conversation_external_id"], page["lineage_external_id"], strict=True)
    values: dict[str, Any] = {
        "item_id": page["key"],
        "dataset_id": [dataset_id] * rows,
        "dataset_version": [dataset_version] * rows,
        "queue_id": [_int_text(v) for v in page["queue_id"]],
        "queue_item_id": page["queue_item_id"],
        "conversation_id": page["conversation_id"],
        "external_id": [_str_or_none(mine or kept) for mine, kept in external],
        "input_messages": ["null" if v is None else v for v in page["input_messages"]],
        "reference_output": ["null" if v is None else v for v in page["reference_output"]],
        "answers": ["null" if v is None else v for v in page["expected_labels"]],
        "label_ids": page["label_ids"],
        "annotators": page["annotators"],
        "reviewer": [_str_or_none(v) for v in page["reviewer"]],
        "final_source": [_str_or_none(v) for v in page["final_source"]],
        "label_source": [JUDGE if v == JUDGE else HUMAN for v in page["label_source"]],
        "schema_name": [_str_or_none(v) for v in page["schema_name"]],
        "schema_version": [_int_text(v) for v in page["schema_version"]],
        "critical": [bool(v) for v in page["critical"]],
        "tags": page["tags"],
        "split": [_str_or_none(v) for v in page["split"]],
        "label_details": _array_texts(page["label_details"]),
    }
    arrays = []
    for column, field in zip(COLUMNS, ARROW_SCHEMA, strict=True):
        if column.kind in ("ints", "strs"):
            arrays.append(_list_column_from_text(_array_texts(values[column.name]), column.kind, field.type))
        else:
            arrays.append(pa.array(values[column.name], type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=ARROW_SCHEMA)


def _array_texts(texts: Sequence[str | None]) -> list[str]:
    """_list_or on a column of JSON text: each array as the database spelled it, else "[]"."""
    return [v if v is not None and v.startswith("[") else "[]" for v in texts]


def _list_or(value: Any, clean: Callable[[Any], list]) -> Any:
    """A JSON array as the database spelled it, or a cleaned Python list ([] for anything else)."""
    if isinstance(value, JsonText):
        return value if value.startswith("[") else JsonText("[]")
    return clean(value) if isinstance(value, list | tuple) else []


def _label_detail(label: Mapping[str, Any]) -> dict[str, Any]:
    created = label.get("created_at")
    return {
        "label_id": label["id"],
        "annotator": label.get("annotator"),
        "answers": label.get("answers") or {},
        "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
    }


def queue_row(item: Mapping[str, Any], labels: Sequence[Mapping[str, Any]], *, answers: Any) -> dict[str, Any]:
    """A queue item with the labels the row stands for. `item`: the queue item's fields with
    its conversation's `external_id`, `messages` and `tags`, the queue's `schema_name`, and
    `reviewer` (a username or None); `labels`: id, annotator, answers, schema_version,
    created_at."""
    before, turn = split_turn(item.get("messages"))
    versions = [v for v in (label.get("schema_version") for label in labels) if v is not None]
    return {
        "item_id": None,
        "dataset_id": None,
        "dataset_version": None,
        "queue_id": item["queue_id"],
        "queue_item_id": item["id"],
        "conversation_id": item["conversation_id"],
        "external_id": item.get("external_id"),
        "input_messages": before,
        "reference_output": turn,
        "answers": answers if answers is not None else {},
        "label_ids": [label["id"] for label in labels],
        "annotators": [label.get("annotator") or "" for label in labels],
        "reviewer": item.get("reviewer"),
        "final_source": _str_or_none(item.get("final_source")),
        "label_source": HUMAN,
        "schema_name": item.get("schema_name"),
        # Labels of one item answer the version current when each was made: the newest names it.
        "schema_version": max(versions) if versions else None,
        "critical": False,
        "tags": _strs(item.get("tags")),
        "split": None,
        "label_details": [_label_detail(label) for label in labels],
    }


def queue_item_rows(items: Iterable[Mapping[str, Any]], labels_by_item: Mapping[int, list]) -> list[dict]:
    """`rows=items`: one row per final item, its final answers, every label in the lineage."""
    return [queue_row(i, labels_by_item.get(i["id"], []), answers=i.get("final_answers")) for i in items]


def queue_label_rows(items: Mapping[int, Mapping[str, Any]], labels: Iterable[Mapping[str, Any]]) -> list[dict]:
    """`rows=labels`: one row per label, that label's answers."""
    return [queue_row(items[label["item_id"]], [label], answers=label.get("answers")) for label in labels]


# --- OpenAI chat fine-tuning ----------------------------------------------------------------

_CHAT_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts)
    return ""


def chat_messages(row: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """{"role", "content"} messages ending with the accepted assistant turn; None when the row
    has no assistant turn with text. Tool calls and tool results are left out: their fields
    differ from message to message, which a fine-tuning file (and a columnar reader) cannot
    carry as one shape; the JSONL export keeps the whole transcript."""
    reference = loads(row.get("reference_output"))
    answer = _text(reference.get("content")) if isinstance(reference, dict) else _text(reference)
    if not answer.strip():
        return None
    messages: list[dict[str, str]] = []
    for m in loads(row.get("input_messages")) or []:
        if not isinstance(m, dict) or m.get("role") not in _CHAT_ROLES:
            continue
        text = _text(m.get("content"))
        if text:
            messages.append({"role": _CHAT_ROLES[m["role"]], "content": text})
    messages.append({"role": "assistant", "content": answer})
    return messages


# --- Writers --------------------------------------------------------------------------------


_AS_TEXT = tuple(c.kind == "json" for c in COLUMNS)
_NULL_KEYS = {name: _ENCODE(name) + ":null" for name in _LIST_COLUMNS}


def _jsonl_line(row: Mapping[str, Any]) -> str:
    # One C-level encode of the whole row (a call per column cost twice as much), JSON columns
    # as JSON text in a string. A list that is JsonText goes in as null and is then swapped for
    # its text: `"tags":null` can only be that key, since quotes inside a string are escaped.
    out: dict[str, Any] = {}
    raw: list[tuple[str, str]] = []
    for name, as_text in zip(NAMES, _AS_TEXT, strict=True):
        value = row[name]
        if as_text:
            out[name] = str(value) if isinstance(value, JsonText) else _ENCODE(value)
        elif isinstance(value, JsonText):
            out[name] = None
            raw.append((name, value))
        else:
            out[name] = value
    line = _ENCODE(out)
    for name, text in raw:
        line = line.replace(_NULL_KEYS[name], _NULL_KEYS[name][:-4] + text, 1)
    return line


def write_jsonl(batches: Iterable[list[dict]], progress: Progress) -> Iterator[bytes]:
    for batch in batches:
        if batch:
            progress.rows += len(batch)
            yield ("\n".join(_jsonl_line(r) for r in batch) + "\n").encode()


def write_openai(batches: Iterable[list[dict]], progress: Progress) -> Iterator[bytes]:
    for batch in batches:
        lines = []
        for row in batch:
            messages = chat_messages(row)
            if messages is None:
                progress.skipped += 1
            else:
                lines.append(dumps({"messages": messages}))
        if lines:
            progress.rows += len(lines)
            yield ("\n".join(lines) + "\n").encode()


def _csv_cell(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS or name in _LIST_COLUMNS:
        return dumps(value)
    if value is None:
        return ""
    if name in _TEXT_COLUMNS and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(batches: Iterable[list[dict]], progress: Progress) -> Iterator[bytes]:
    buffer = io.StringIO()
    # Every field quoted when needed (commas, quotes, newlines): RFC 4180, which pandas and
    # datasets read back exactly; \n line ends so a cell's own \r\n is not confused with one.
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(NAMES)
    for batch in batches:
        for row in batch:
            writer.writerow([_csv_cell(name, row[name]) for name in NAMES])
        progress.rows += len(batch)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


class _Drain(io.RawIOBase):
    """A write-only file that hands over what was written since the last drain: ParquetWriter
    writes a file front to back (it never seeks), so row groups can leave as they are made."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _list_column(values: list[Any], kind: str, arrow_type: pa.DataType) -> pa.Array:
    if any(isinstance(v, JsonText) for v in values):
        return _list_column_from_text([dumps(v) for v in values], kind, arrow_type)
    return _list_array(values, kind, arrow_type)


def _list_column_from_text(texts: list[str], kind: str, arrow_type: pa.DataType) -> pa.Array:
    # One parse for the whole column instead of one per row.
    return _list_array(json.loads("[" + ",".join(texts) + "]"), kind, arrow_type)


def _list_array(values: list[Any], kind: str, arrow_type: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a hand-edited lineage: clean row by row
        clean = _ints if kind == "ints" else _strs
        return pa.array([clean(v) if isinstance(v, list) else [] for v in values], type=arrow_type)


def record_batch(batch: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    columns = []
    for column, field in zip(COLUMNS, ARROW_SCHEMA, strict=True):
        values = [row[column.name] for row in batch]
        if column.kind == "json":
            columns.append(pa.array([dumps(v) for v in values], type=field.type))
        elif column.kind in ("ints", "strs"):
            columns.append(_list_column(values, column.kind, field.type))
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(columns, schema=ARROW_SCHEMA)


def write_parquet(batches: Iterable[list[dict]], progress: Progress) -> Iterator[bytes]:
    return write_record_batches((record_batch(batch) for batch in batches if batch), progress)


def write_record_batches(batches: Iterable[pa.RecordBatch], progress: Progress) -> Iterator[bytes]:
    """Parquet of record batches in ARROW_SCHEMA (`record_batch`, `dataset_record_batch`)."""
    sink = _Drain()
    # One row group per batch: a reader (and this writer) holds one batch's columns at a time.
    with pq.ParquetWriter(sink, ARROW_SCHEMA, compression="zstd") as writer:
        for batch in batches:
            if not batch.num_rows:
                continue
            writer.write_batch(batch)
            progress.rows += batch.num_rows
            yield sink.drain()
    yield sink.drain()  # the footer


def write_jsonl_lines(pages: Iterable[list[str]], progress: Progress) -> Iterator[bytes]:
    """JSONL of pages of finished lines (PostgreSQL builds a dataset version's: evaluation/sql.py)."""
    for lines in pages:
        if lines:
            progress.rows += len(lines)
            yield ("\n".join(lines) + "\n").encode()


WRITERS: dict[str, Callable[[Iterable[list[dict]], Progress], Iterator[bytes]]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "parquet": write_parquet,
    "openai": write_openai,
}


def stream(fmt: str, batches: Iterable[list[dict]], progress: Progress | None = None) -> Iterator[bytes]:
    """The export as chunks of bytes, about one per batch (empty chunks are not yielded)."""
    progress = progress if progress is not None else Progress()
    for chunk in WRITERS[fmt](batches, progress):
        if chunk:
            yield chunk


def filename(stem: str, fmt: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem)[:120].strip("-.") or "export"
    return f"{safe}.{EXTENSIONS[fmt]}"
