"""Every app's hand-written SQL lives in its `sql.py` (docs/architecture.md), and every statement
there is prepared against the migrated schema on PostgreSQL: a migration that renames, drops or
retypes something a statement uses fails here, not on the first claim after a deploy."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from django.db import connection, transaction

ROOT = Path(__file__).resolve().parent.parent
NOT_APPS = {"tests", "bench", "clients"}
# Builders of generic statements from any model's _meta (rawsql.insert/update, bulk's COPY and
# INSERT ... SELECT), and the health probe's SELECT 1: plumbing, not an app's statements.
SQL_BUILDERS = {"reviewapp/rawsql.py", "reviewapp/bulk.py", "reviewapp/health.py"}
_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s")


def _sql_modules() -> list[str]:
    return sorted(f"{path.parent.name}.sql" for path in ROOT.glob("*/sql.py") if path.parent.name not in NOT_APPS)


def statements() -> list[tuple[str, str]]:
    """(module.NAME, text) of every statement: the UPPER_CASE strings of each sql.py, and the
    strings of its UPPER_CASE dicts (variants of one statement)."""
    found = []
    for module_name in _sql_modules():
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if name.startswith("_") or not name.isupper():
                continue
            if isinstance(value, str):
                found.append((f"{module_name}.{name}", value))
            elif isinstance(value, dict):
                found += [(f"{module_name}.{name}[{key!r}]", text) for key, text in value.items()]
    return found


def _numbered(sql: str) -> str:
    """psycopg placeholders (%s, %(name)s) as PostgreSQL's $1, $2...; a name used twice is one
    parameter, as psycopg binds it."""
    names: dict[str, int] = {}
    count = 0

    def number(match: re.Match) -> str:
        nonlocal count
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name is not None and name in names:
            return f"${names[name]}"
        count += 1
        if name is not None:
            names[name] = count
        return f"${count}"

    return re.sub(r"%%|%\((\w+)\)s|%s", number, sql)


def test_the_placeholders_are_numbered_as_psycopg_binds_them():
    assert (
        _numbered("a = %(x)s AND b = %s AND c = %(x)s AND d LIKE 'x%%'")
        == "a = $1 AND b = $2 AND c = $1 AND d LIKE 'x%'"
    )


def test_every_app_with_hand_written_sql_has_its_statements_found():
    names = {name for name, _ in statements()}

    assert {m.split(".")[0] for m in _sql_modules()} == {"reviewapp", "labeling", "escalations", "evaluation"}
    assert {
        "labeling.sql.LEASE_NEXT",
        "labeling.sql.LEASE_NEXT_RELAXED",
        "labeling.sql.CLAIM_PRECHECK_LOCKED['session']",
        "labeling.sql.CLAIMABLE_EXISTS",
        "labeling.sql.IN_QUEUE",
        "reviewapp.sql.PERSONAL_TOKEN",
    } <= names


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(("name", "text"), statements(), ids=[name for name, _ in statements()])
def test_every_statement_prepares_against_the_migrated_schema(name, text):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"PREPARE sql_check AS {_numbered(text)}")
        cursor.execute("SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = 'sql_check'")
        [parameters] = cursor.fetchone()
        cursor.execute("DEALLOCATE sql_check")
        transaction.set_rollback(True)
    # Every placeholder became a parameter of the prepared statement.
    assert parameters == len(set(re.findall(r"%\((\w+)\)s", text))) + len(re.findall(r"(?<!%)%s", text))


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_statement_the_schema_no_longer_fits_fails_to_prepare():
    """What the test above guards against: a column a statement names that is gone."""
    from labeling import sql

    broken = sql.IN_QUEUE.replace('"conversation_id"', '"conversation_ref"')
    with pytest.raises(Exception, match="conversation_ref"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"PREPARE sql_check AS {_numbered(broken)}")


def _sql_literals(path: Path) -> list[tuple[int, str]]:
    """(line, start) of every string constant or f-string in `path` that begins as a statement."""
    found = []
    tree = ast.parse(path.read_text())
    parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if id(node) in parts:  # a piece of an f-string, seen with the f-string
            continue
        if isinstance(node, ast.JoinedStr):
            first = node.values[0] if node.values else None
            text = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if _SQL_START.match(text):
            found.append((node.lineno, text.strip()[:60]))
    return found


def test_hand_written_sql_lives_only_in_each_apps_sql_module():
    offenders = []
    apps = sorted(p.parent for p in ROOT.glob("*/__init__.py") if p.parent.name not in NOT_APPS)
    assert {app.name for app in apps} >= {"reviewapp", "labeling"}
    for path in (file for app in apps for file in sorted(app.rglob("*.py"))):
        relative = path.relative_to(ROOT)
        if "migrations" in relative.parts:
            continue
        if relative.name == "sql.py" or relative.as_posix() in SQL_BUILDERS:
            continue
        offenders += [f"{relative}:{line}: {text}" for line, text in _sql_literals(path)]
    assert not offenders, "Move these statements into the app's sql.py:\n" + "\n".join(offenders)


def test_the_guard_sees_statements_in_strings_and_f_strings(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        'A = "SELECT conversation_id FROM labeling_queueitem WHERE queue_id = %s"\n'
        'B = f"""\n  UPDATE {table} SET x = 1"""\n'
        'C = "Selected items are shown first."\n'
        'D = f"WITHIN {n} days"\n'
    )

    assert [line for line, _ in _sql_literals(module)] == [1, 2]
