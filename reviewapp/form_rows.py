"""Row buttons of the browser's editors (rubric questions, sampling rules, ladder tiers): pure,
no ORM. The editors post their rows and the button pressed; the page comes back with the rows
changed, so adding, moving and removing rows needs no script."""

from __future__ import annotations

from typing import Any


def rows_apply(rows: list[Any], op: str, blank: Any, limit: int) -> list[Any]:
    """Apply an editor button to the rows: `add` (appends `blank` while under `limit`), or
    `up-<i>`, `down-<i>`, `remove-<i>`. Anything else (saving, previewing, an index out of
    range) leaves them as they are. Returns a new list."""
    rows = list(rows)
    if op == "add":
        if len(rows) < limit:
            rows.append(blank)
        return rows
    verb, _, index_text = op.partition("-")
    if not index_text.isdigit() or int(index_text) >= len(rows):
        return rows
    i = int(index_text)
    if verb == "remove":
        del rows[i]
    elif verb == "up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
    elif verb == "down" and i < len(rows) - 1:
        rows[i + 1], rows[i] = rows[i], rows[i + 1]
    return rows


def row_views(rows: list[Any], errors: dict[str, list[str]], prefix: str) -> list[dict[str, Any]]:
    """What an editor's template shows of each row: its values, and the errors of its fields
    (posted as `<prefix>-<i>-<field>`, keyed here by the field alone)."""
    out = []
    for i, row in enumerate(rows):
        row_prefix = f"{prefix}-{i}-"
        row_errors = {k.removeprefix(row_prefix): v for k, v in errors.items() if k.startswith(row_prefix)}
        out.append({"index": i, "number": i + 1, "values": row, "errors": row_errors, "last": i == len(rows) - 1})
    return out
