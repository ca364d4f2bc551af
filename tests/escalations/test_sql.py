"""escalations/sql.py: policy globs as regular expressions (the same answers as fnmatchcase,
in the database on SQLite and PostgreSQL alike), args paths summed in SQL exactly as the
policy's own lookup reads them, and every hand-written statement run against the schema."""

from __future__ import annotations

import fnmatch
import itertools

import pytest
from django.db import connection

from escalations import policies, selectors, sql
from escalations.models import Action
from tests.escalations.factories import NOW, request, request_body

NAMES = ["refund", "refund_partial", "Refund", "re-fund", "r", "", "a.b", "a:b/c", "x]", "x-", "x^", "x\\", "ab*", "a?"]
GLOBS = [
    "refund",
    "refund*",
    "*",
    "re?und",
    "[rR]efund",
    "[!r]*",
    "[a-c]*",
    "[z-a]*",
    "[!z-a]",
    "[]]",
    "x[]]",
    "x[-]",
    "x[!-]",
    "x[\\]",
    "x[^]",
    "[",
    "a[",
    "a.b",
    "a:b/*",
    "ab[*]",
    "a[?]",
    "**d",
    "re-*",
    "*_partial",
]


@pytest.mark.parametrize("glob", GLOBS)
def test_a_glob_as_a_regex_matches_what_fnmatchcase_matches(glob):
    import re

    pattern = sql.glob_regex(glob)
    for name in NAMES:
        expected = fnmatch.fnmatchcase(name, glob)
        got = name == glob if pattern is None else re.search(pattern, name) is not None
        assert got == expected, (glob, name, pattern)


def test_the_database_reads_the_regexes_as_python_does(db):
    """SQLite's REGEXP is Python's re; PostgreSQL's is its own dialect: both must agree."""
    with connection.cursor() as cursor:
        for glob, name in itertools.product(GLOBS, NAMES):
            pattern = sql.glob_regex(glob)
            if pattern is None:
                continue
            if connection.vendor == "postgresql":
                cursor.execute("SELECT %s ~ %s", [name, pattern])
            else:
                cursor.execute("SELECT %s REGEXP %s", [name, pattern])
            assert bool(cursor.fetchone()[0]) == fnmatch.fnmatchcase(name, glob), (glob, name, pattern)


@pytest.mark.parametrize(
    ("path", "exact"),
    [("amount", True), ("items.0.price", True), ("items.12", True), ("a.-1", False), ("a.+1", False), ("a. 1", False)],
)
def test_which_paths_postgresql_reads_like_the_policy(path, exact):
    assert sql.jsonb_path_exact(path) is exact


DOCS = [
    {"amount": 10},
    {"amount": 2.5},
    {"amount": "30"},
    {"amount": True},
    {"amount": None},
    {"amount": [5]},
    {"items": [{"price": 7}, {"price": 8}]},
    {"items": {"0": {"price": 100}}},
    {"a": [1, 2, 3], "b": {"-1": 50}},
    {"deep": {"x": {"y": {"z": 1000}}}},
    {},
]


@pytest.mark.parametrize(
    "path", ["amount", "items.0.price", "items.1.price", "a.-1", "b.-1", "a.2", "deep.x.y.z", "nope"]
)
def test_a_sum_in_the_database_equals_the_policys_own_lookup(project, path):
    for i, args in enumerate(DOCS):
        request(project, request_body(f"a-{i}", action="pay", args=args))
    facts = policies.ActionFacts("pay", {}, None, (), "v2", "customer-812")
    window = policies.VelocityWindow("sum", path, "end_user_id", 3600, None)
    expected = 0.0
    for args in Action.objects.values_list("args", flat=True):
        found, value = policies.arg_lookup(args, path)
        if found and isinstance(value, int | float) and not isinstance(value, bool):
            expected += value

    assert selectors.velocity_total(project_id=project.pk, window=window, facts=facts, now=NOW) == expected


@pytest.mark.postgres
def test_every_statement_runs_against_the_schema(db):
    with connection.cursor() as cursor:
        for statement, params in sql.statements():
            cursor.execute(statement, params)
