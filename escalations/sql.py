"""Hand-written SQL fragments for escalations, built from the models' own table and column
names (never input), one spelling per database where Django has none for both."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from escalations.models import Action, LadderVersion

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


def groups_with_ladder_tiers(grouped: QuerySet[Action]) -> list[tuple[int, int, int, Any]]:
    """The rows of `grouped` (actions `.values("ladder_id", "tier").annotate(n=Count(...))`)
    as (ladder_id, tier, n, tiers), `tiers` being that ladder version's stored tiers (JSON
    text or decoded, by backend). One statement; the ladder table is read once per group. The
    ORM's spelling (a subquery in the grouped select list) is grouped by, and so run, once per
    action."""
    inner, params = grouped.values_list("ladder_id", "tier", "n").query.sql_with_params()
    qn = connection.ops.quote_name
    ladder = LadderVersion._meta
    statement = (
        f"SELECT g.ladder_id, g.tier, g.n, l.{qn(ladder.get_field('tiers').column)} "  # noqa: S608 - model names only
        f"FROM ({inner}) g JOIN {qn(ladder.db_table)} l ON l.{qn(ladder.pk.column)} = g.ladder_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall())
