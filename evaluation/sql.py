"""Hand-written SQL of evaluation. Only a wrapper today: the calibration report's GROUP BY
query, compiled by Django (values bound as parameters), run as a MATERIALIZED common table
expression so PostgreSQL hashes the rows into patterns and sorts only the patterns
(selectors._sorted_after_grouping explains why)."""

from __future__ import annotations


def grouped_then_sorted(inner_sql: str, *, columns: int) -> str:
    """`inner_sql` (a compiled queryset's SQL, its values left as placeholders) sorted by its
    first `columns` columns after grouping."""
    order = ", ".join(str(i) for i in range(1, columns + 1))
    return f"WITH grouped AS MATERIALIZED ({inner_sql}) SELECT * FROM grouped ORDER BY {order}"  # noqa: S608 - compiled SQL and digits only
