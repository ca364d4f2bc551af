"""Hand-written SQL of escalations, built from the models' own table and column names (never
input), one spelling per database where Django has none for both, and the pure helpers that
turn policy globs and args paths into it. A PostgreSQL test runs every statement here against
the migrated schema (tests/escalations/test_sql.py).

Velocity windows (selectors.velocity_total) filter on action names by a policy glob and sum a
numeric args path. A glob becomes a regular expression in the dialect Python's `re` (SQLite's
REGEXP, which Django provides) and PostgreSQL's advanced regular expressions share: anchored,
`*` as `.*`, `?` as `.`, `[...]` classes kept (`[!...]` negated), every other punctuation
character escaped with a backslash, which both read as that character, inside classes too.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Count, DecimalField, QuerySet
from django.db.models.expressions import RawSQL

from escalations.models import Action, ActionEvent, ActionStatus, LadderVersion, PolicyVersion
from reviewapp.models import ApiKey
from reviewapp.rawsql import Table, literal
from reviewapp.selectors import project_key_statement

A = Table(Action)
E = Table(ActionEvent)
PV = Table(PolicyVersion)
K = Table(ApiKey)

_RISK_TAGS = f'"{Action._meta.db_table}"."{Action._meta.get_field("risk_tags").column}"'


def risk_tag_present(tag: str) -> RawSQL:
    """Whether an action's `risk_tags` (a JSON list of strings) holds `tag` exactly. Django's
    `contains` lookup on JSON is PostgreSQL-only; these two spellings answer the same: jsonb's
    `?` is true for a top-level string element, and SQLite's json_each walks the list."""
    if connection.vendor == "postgresql":
        sql = f"({_RISK_TAGS} ? %s)"
    else:
        sql = f"EXISTS (SELECT 1 FROM json_each({_RISK_TAGS}) WHERE json_each.type = 'text' AND json_each.value = %s)"  # noqa: S608 - model column names only
    return RawSQL(sql, [tag], output_field=BooleanField())  # noqa: S611 - the tag is a bound parameter


_GLOB_CHARS = frozenset("*?[")


def _escape(char: str) -> str:
    return "\\" + char if char.isascii() and not char.isalnum() else char


def _bracket(content: str) -> str | None:
    """A glob class body (without `[`, `]` and a leading `!`) as regex class items, or None
    when it admits no character (only reversed ranges, which fnmatch drops)."""
    items: list[str] = []
    i = 0
    while i < len(content):
        if i + 2 < len(content) and content[i + 1] == "-":
            low, high = content[i], content[i + 2]
            if low <= high:
                items.append(f"{_escape(low)}-{_escape(high)}")
            i += 3
        else:
            items.append(_escape(content[i]))
            i += 1
    return "".join(items) or None


# A pattern no action name matches: names never hold a space (action_input.ACTION_PATTERN).
_NEVER_MATCHES = "^ $"


def glob_regex(glob: str) -> str | None:
    """The regular expression for a policy glob (fnmatchcase semantics), or None when the glob
    has no wildcard (compare with `=` then). A class admitting nothing gives _NEVER_MATCHES."""
    if not _GLOB_CHARS.intersection(glob):
        return None
    out = ["^"]
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        i += 1
        if char == "*":
            if out[-1] != ".*":
                out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i
            if j < n and glob[j] == "!":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(_escape("["))
                continue
            content, i = glob[i:j], j + 1
            negate = content.startswith("!")
            body = _bracket(content[1:] if negate else content)
            if body is None:
                if negate:
                    out.append(".")  # "not one of nothing": any one character
                    continue
                return _NEVER_MATCHES
            out.append(f"[{'^' if negate else ''}{body}]")
        else:
            out.append(_escape(char))
    out.append("$")
    return "".join(out)


# PostgreSQL reads a path element as a list index when it parses as an integer, signs and
# spaces included ("-1" is the last element); the policy's arg_lookup only takes plain digits.
_PG_INTEGERISH = re.compile(r"\s*[+-]?\d+\s*")
_PLAIN_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")


def jsonb_path_exact(path: str) -> bool:
    """Whether `args #> path` on PostgreSQL finds exactly what policies.arg_lookup finds: every
    segment is a plain index or not integer-like at all."""
    return all(not _PG_INTEGERISH.fullmatch(s) or _PLAIN_INDEX.fullmatch(s) for s in path.split("."))


def arg_number_pg(path: str) -> RawSQL:
    """The number at `path` in an action's args, or NULL (missing, text, true/false, a list...).
    Numeric, not float8: args may hold integers beyond 64 bits (JSON decoding keeps them exact),
    and a cast that overflows would abort the transaction."""
    column = f"{connection.ops.quote_name(Action._meta.db_table)}.{connection.ops.quote_name('args')}"
    segments = path.split(".")
    # Only the model's own table and column names are interpolated; the path is a parameter.
    return RawSQL(  # noqa: S611
        f"CASE WHEN jsonb_typeof({column} #> %s::text[]) = 'number' THEN ({column} #>> %s::text[])::numeric END",
        [segments, segments],
        output_field=DecimalField(),
    )


# Velocity evaluations of one end user (or agent version, or project) take turns, so two
# refunds sent at once cannot both count the window without the other: the second waits for
# the first to commit and then counts it. Keys are sorted by the caller: no deadlock.
VELOCITY_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) AS k"


def velocity_lock_keys(*, project_id: int, by_values: dict[str, str]) -> list[str]:
    """The advisory lock keys, sorted, for the window dimensions a policy uses."""
    return sorted(f"escalations.velocity:{project_id}:{by}:{value}" for by, value in by_values.items())


# What an action request reads before it decides, in one statement: whether its external_id is
# taken (a repeat: read that action, decide nothing) and the project's policy in force (its
# version, and the stored rules and default ladder as text, the key of the parsed policy's
# in-process cache). No policy yet: NULLs. Parameters: project id, external_id, project id.
# Over the unique indexes (project, external_id) and (project, version).
REQUEST_CONTEXT = (
    f"SELECT EXISTS (SELECT 1 FROM {A} a WHERE a.{A.project} = %s AND a.{A.external_id} = %s), "  # noqa: S608
    f"p.{PV.version}, p.{PV.rules}, p.{PV.default_ladder} "
    f"FROM (SELECT 1 AS one) x LEFT JOIN (SELECT {PV.version}, {PV.rules}, {PV.default_ladder} FROM {PV} "
    f"WHERE {PV.project} = %s ORDER BY {PV.version} DESC LIMIT 1) p ON x.one = 1"
)

# The project key (the core's project_key_statement: the key, its organization and project)
# and REQUEST_CONTEXT for its project, in one statement: the lean path of POST /api/v1/actions
# reads both before it decides. Parameters: external_id, the key's hash. No row: no usable key.
KEY_AND_REQUEST_CONTEXT = project_key_statement(
    more_columns=(
        f", EXISTS (SELECT 1 FROM {A} x WHERE x.{A.project} = a.{K.project} AND x.{A.external_id} = %s), "  # noqa: S608
        f"v.{PV.version}, v.{PV.rules}, v.{PV.default_ladder}"
    ),
    # A correlated subquery, not LATERAL: SQLite runs it too.
    more_joins=(
        f" LEFT JOIN {PV} v ON v.{PV.id} = (SELECT w.{PV.id} FROM {PV} w "  # noqa: S608
        f"WHERE w.{PV.project} = a.{K.project} ORDER BY w.{PV.version} DESC LIMIT 1)"
    ),
)


def _velocity(by: str, match: str, of: str) -> str:
    """One velocity window's statement (PostgreSQL): the count of the project's approved or
    pending actions created in [since, now], of the same end user / agent version / any (`by`),
    whose name equals or matches (`match`: "eq", "regex") %(action)s; or the sum of the numbers
    at the args path %(path)s (segments, text[]; see arg_number_pg). Over the indexes
    (project, end_user_id, created_at), (project, agent_version, created_at), (project,
    created_at). The statuses are literals: a generic plan still knows them."""
    head = (
        "SELECT COUNT(*)"
        if of == "count"
        else f"SELECT SUM(CASE WHEN jsonb_typeof(a.{A.args} #> %(path)s::text[]) = 'number' "
        f"THEN (a.{A.args} #>> %(path)s::text[])::numeric END)"
    )
    where = (
        f"a.{A.project} = %(project)s AND a.{A.created_at} >= %(since)s AND a.{A.created_at} <= %(now)s "
        f"AND a.{A.status} IN ({literal(ActionStatus.APPROVED)}, {literal(ActionStatus.PENDING)})"
    )
    if by != "project":
        where += f" AND a.{getattr(A, by)} = %(by)s"
    where += f" AND a.{A.action} {'~' if match == 'regex' else '='} %(action)s"
    return f"{head} FROM {A} a WHERE {where}"


# Every velocity statement, by "<by>/<match>/<of>": prepared once per connection, each.
VELOCITY = {
    f"{by}/{match}/{of}": _velocity(by, match, of)
    for by in ("end_user_id", "agent_version", "project")
    for match in ("eq", "regex")
    for of in ("count", "sum")
}


_ACTION_FIELDS = [f for f in Action._meta.concrete_fields if not f.primary_key]
_EVENT_FIELDS = [f for f in ActionEvent._meta.concrete_fields if not f.primary_key and f.name != "action"]
# The attnames, in statement order, of ACTION_WITH_EVENTS' action values and of each event's.
ACTION_ATTNAMES = tuple(f.attname for f in _ACTION_FIELDS)
EVENT_ATTNAMES = tuple(f.attname for f in _EVENT_FIELDS)


def _action_with_events(events: int) -> str:
    """A new action and its first `events` ActionEvents in one statement (PostgreSQL): the
    action unless its (project, external_id) is taken (then nothing at all, and no row
    answered), the events pointing at it, their ids in list order (ORDER BY the position).
    The events' values are cast to their columns' types: in a VALUES list they have none."""
    qn = connection.ops.quote_name
    action_columns = ", ".join(qn(f.column) for f in _ACTION_FIELDS)
    event_columns = ", ".join(qn(f.column) for f in _EVENT_FIELDS)
    one = ", ".join(f"%s::{f.cast_db_type(connection)}" for f in _EVENT_FIELDS)
    rows = ", ".join(f"({one}, {n})" for n in range(events))
    names = ", ".join(f"c{i}" for i in range(len(_EVENT_FIELDS)))
    picked = ", ".join(f"v.c{i}" for i in range(len(_EVENT_FIELDS)))
    return (
        f"WITH a AS (INSERT INTO {A} ({action_columns}) VALUES ({', '.join(['%s'] * len(_ACTION_FIELDS))}) "  # noqa: S608
        f"ON CONFLICT ({A.project}, {A.external_id}) DO NOTHING RETURNING {A.id}), "
        f"e AS (INSERT INTO {E} ({E.action}, {event_columns}) SELECT a.{A.id}, {picked} "
        f"FROM a CROSS JOIN (VALUES {rows}) v({names}, n) ORDER BY v.n) "
        f"SELECT {A.id} FROM a"
    )


# By the number of events: 2 when the policy decides (created, policy_decided), 3 when it
# escalates (created, escalated, tier_entered).
ACTION_WITH_EVENTS = {2: _action_with_events(2), 3: _action_with_events(3)}


def statements() -> list[tuple[str, Any]]:
    """(SQL, sample parameters) of every statement here, for the test that runs them."""
    pending_groups = (
        Action.objects.filter(organization_id=1, status="pending")
        .order_by()
        .values("ladder_id", "tier")
        .annotate(n=Count("pk"))
    )
    return [(VELOCITY_LOCK_SQL, [["escalations.velocity:1:project:"]]), _groups_statement(pending_groups)]


def _groups_statement(grouped: QuerySet[Action]) -> tuple[str, Any]:
    inner, params = grouped.values_list("ladder_id", "tier", "n").query.sql_with_params()
    qn = connection.ops.quote_name
    ladder = LadderVersion._meta
    statement = (
        f"SELECT g.ladder_id, g.tier, g.n, l.{qn(ladder.get_field('tiers').column)} "  # noqa: S608 - model names only
        f"FROM ({inner}) g JOIN {qn(ladder.db_table)} l ON l.{qn(ladder.pk.column)} = g.ladder_id"
    )
    return statement, params


def groups_with_ladder_tiers(grouped: QuerySet[Action]) -> list[tuple[int, int, int, Any]]:
    """The rows of `grouped` (actions `.values("ladder_id", "tier").annotate(n=Count(...))`)
    as (ladder_id, tier, n, tiers), `tiers` being that ladder version's stored tiers (JSON
    text or decoded, by backend). One statement; the ladder table is read once per group. The
    ORM's spelling (a subquery in the grouped select list) is grouped by, and so run, once per
    action."""
    statement, params = _groups_statement(grouped)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall())
