"""Hand-written SQL of evaluation: the calibration report's GROUP BY wrapper, and the
PostgreSQL page of a dataset-version JSONL export.

`grouped_then_sorted`: the calibration report's GROUP BY query, compiled by Django (values
bound as parameters), run as a MATERIALIZED common table expression so PostgreSQL hashes the
rows into patterns and sorts only the patterns (selectors._sorted_after_grouping explains why).

`DATASET_VERSION_JSONL_PAGE`: one keyset page of a dataset version (selectors_exports explains
the paging), each row's export line built by PostgreSQL, so Python only joins the lines. It
spells out, in SQL, what `exports.dataset_row` and `exports._jsonl_line` do in Python (the SQLite
path and the other formats), byte for byte: the keys of `exports.COLUMNS` in their order, the
same fallbacks and types, compact separators, and strings escaped as Python's encoder escapes
them (PostgreSQL's `to_json` escapes exactly `"`, `\\`, \\b \\f \\n \\r \\t and other controls
as lowercase \\u00XX, and leaves the rest, as `json.dumps(ensure_ascii=False)` does).
tests/evaluation/test_exports_sql.py holds the two paths to the same bytes on hostile rows.
The line is concatenated text rather than `json_build_object(...)::text`, which would put
" : " and ", " between keys (three bytes more per key, 60 a row) for the same parsed rows.
"""
# ruff: noqa: S608 - every interpolation below is a model's own table or column, or a constant

from __future__ import annotations

from evaluation import exports
from evaluation.models import DatasetVersionItem
from reviewapp.models import Conversation
from reviewapp.rawsql import Table, literal

D = Table(DatasetVersionItem)
C = Table(Conversation)


def grouped_then_sorted(inner_sql: str, *, columns: int) -> str:
    """`inner_sql` (a compiled queryset's SQL, its values left as placeholders) sorted by its
    first `columns` columns after grouping."""
    order = ", ".join(str(i) for i in range(1, columns + 1))
    return f"WITH grouped AS MATERIALIZED ({inner_sql}) SELECT * FROM grouped ORDER BY {order}"


# --- a dataset version's JSONL, a page at a time ----------------------------------------------

_LINEAGE = f"i.{D.lineage}"


def _json(expr: str) -> str:
    """A scalar as JSON (a string escaped, a number, true/false), `null` for SQL NULL."""
    return f"COALESCE(to_json({expr})::text, 'null')"


def _text(expr: str) -> str:
    """exports._str_or_none: an empty string is null."""
    return _json(f"NULLIF({expr}, '')")


def _int_text(expr: str) -> str:
    """exports._int_text: a JSON scalar read as text that is an integer ("3", "-3"; fewer than 19
    characters, so it fits 64 bits), else null."""
    return _json(f"CASE WHEN {expr} ~ '^-?[0-9]+$' AND length({expr}) < 19 THEN ({expr})::bigint END")


def _json_text(expr: str) -> str:
    """A JSON column as a JSON string holding its text (exports.json_text: SQL NULL is "null")."""
    return _json(f"COALESCE(({expr})::text, 'null')")


def _array(expr: str) -> str:
    """exports._list_or on the database's text: the array as stored, anything else []."""
    return f"CASE WHEN jsonb_typeof({expr}) = 'array' THEN ({expr})::text ELSE '[]' END"


def _lineage(*paths: str) -> str:
    """The first of several lineage keys present (not JSON null), as text: what
    selectors_exports reads with KT() and Coalesce(). A dotted path is nested."""
    picks = [f"({_LINEAGE} #>> '{{{p.replace('.', ',')}}}')" if "." in p else f"({_LINEAGE} ->> '{p}')" for p in paths]
    return picks[0] if len(picks) == 1 else f"COALESCE({', '.join(picks)})"


_LINE_VALUES = {
    "item_id": _json(f"i.{D.key}"),
    "dataset_id": "(%(dataset_id)s::bigint)::text",
    "dataset_version": "(%(dataset_version)s::bigint)::text",
    "queue_id": _int_text(_lineage("queue_id")),
    "queue_item_id": _json(f"i.{D.queue_item}"),
    "conversation_id": _json(f"i.{D.conversation}"),
    # The conversation's id in the agent's system, else the one the lineage kept.
    "external_id": _text(f"COALESCE(NULLIF(c.{C.external_id}, ''), {_lineage('external_id')})"),
    "input_messages": _json_text(f"i.{D.input_messages}"),
    "reference_output": _json_text(f"i.{D.reference_output}"),
    "answers": _json_text(f"i.{D.expected_labels}"),
    "label_ids": _array(f"({_LINEAGE} -> 'label_ids')"),
    "annotators": _array(f"({_LINEAGE} -> 'annotators')"),
    "reviewer": _text(_lineage("reviewer")),
    "final_source": _text(_lineage("final_source")),
    "label_source": f"CASE WHEN {_lineage('made_by', 'label_source', 'source')} = {literal(exports.JUDGE)}"
    f" THEN {literal(exports.dumps(exports.JUDGE))} ELSE {literal(exports.dumps(exports.HUMAN))} END",
    "schema_name": _text(_lineage("rubric.name", "schema.name", "schema_name")),
    "schema_version": _int_text(_lineage("rubric.version", "schema.version", "schema_version")),
    "critical": _json(f"i.{D.critical}"),
    "tags": _array(f"i.{D.tags}"),
    "split": _text(f"i.{D.split}"),
    "label_details": _json(_array(f"({_LINEAGE} -> 'labels')")),
}


def _line() -> str:
    parts = []
    for index, (name, value) in enumerate(_LINE_VALUES.items()):
        key = ("{" if index == 0 else ",") + exports.dumps(name) + ":"
        parts.append(f"{literal(key)} || {value}")
    return "\n    || ".join(parts) + " || '}'"


# (id, line) of up to %(limit)s items of a version after id %(after)s, in id order: the keyset
# page selectors_exports.dataset_version_batches reads through the ORM, as finished JSONL lines.
DATASET_VERSION_JSONL_PAGE = f"""
SELECT i.{D.id}, {_line()}
FROM {D} i LEFT JOIN {C} c ON c.{C.id} = i.{D.conversation}
WHERE i.{D.version} = %(version)s AND i.{D.id} > %(after)s
ORDER BY i.{D.id}
LIMIT %(limit)s"""
