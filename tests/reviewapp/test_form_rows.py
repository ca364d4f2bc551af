"""The editors' row buttons (reviewapp.form_rows)."""

from __future__ import annotations

from reviewapp.form_rows import rows_apply


def test_rows_apply_adds_moves_and_removes_within_bounds():
    rows = ["a", "b", "c"]
    assert rows_apply(rows, "up-1", "x", 5) == ["b", "a", "c"]
    assert rows_apply(rows, "down-1", "x", 5) == ["a", "c", "b"]
    assert rows_apply(rows, "remove-0", "x", 5) == ["b", "c"]
    assert rows_apply(rows, "add", "x", 5) == ["a", "b", "c", "x"]
    assert rows_apply(rows, "add", "x", 3) == rows
    for harmless in ("up-0", "down-2", "remove-9", "up-x", "save", ""):
        assert rows_apply(rows, harmless, "x", 5) == rows


def test_rows_apply_returns_a_new_list():
    rows = ["a"]
    assert rows_apply(rows, "add", "b", 5) == ["a", "b"] and rows == ["a"]
