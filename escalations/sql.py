"""Hand-written SQL fragments for escalations, built from the models' own table and column
names (never input), one spelling per database where Django has none for both."""

from __future__ import annotations

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from escalations.models import Action

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
