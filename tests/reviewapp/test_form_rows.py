"""The editors' row buttons (reviewapp.form_rows)."""

from __future__ import annotations

from reviewapp.form_rows import row_views, rows_apply


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


def test_row_views_give_each_row_its_own_errors_by_field():
    errors = {"t-0-timeout": ["too short"], "t-1-users": ["unknown: x"], "t-10-role": ["bad"], "name": ["taken"]}
    views = row_views([{"a": "1"}, {"a": "2"}], errors, "t")
    assert [(v["index"], v["number"], v["last"]) for v in views] == [(0, 1, False), (1, 2, True)]
    assert [v["errors"] for v in views] == [{"timeout": ["too short"]}, {"users": ["unknown: x"]}]
    assert views[1]["values"] == {"a": "2"}
