"""The core's hand-written SQL: every statement, in one place, built from the models.

Tables and columns come from `_meta` (`rawsql.Table`), so a renamed field changes the statement
instead of leaving it stale; tests/test_sql.py prepares every statement here against the
migrated schema on PostgreSQL. They are run by `reviewapp.rawsql` (prepared on PostgreSQL,
through Django's execute wrappers) from selectors.py. Module-level UPPER_CASE names are
statements; only the models' own names are interpolated, never a value from outside.
"""
# ruff: noqa: S608 - every interpolation below is a model's own table or column name

from __future__ import annotations

from django.contrib.auth import get_user_model

from reviewapp.models import (
    ApiKey,
    Conversation,
    Feedback,
    JudgeScore,
    Membership,
    Organization,
    PersonalToken,
    Project,
    UserCredentials,
)
from reviewapp.rawsql import Table, columns

User = get_user_model()
T = Table(PersonalToken)
U = Table(User)
O = Table(Organization)  # noqa: E741 - the organization table, as its alias `o` reads below
M = Table(Membership)
F = Table(Feedback)
J = Table(JudgeScore)
K = Table(UserCredentials)
A = Table(ApiKey)
P = Table(Project)

# A person's token, its user, organization and role there, in one statement: it runs on every
# API request, where the equivalent ORM query cost ~1.5 ms to compile. A token older than the
# membership was issued under an earlier one: removing a person ends their tokens for good,
# even if they are added back (and even if the row was deleted by hand). A token issued under
# an earlier credentials epoch predates a password change (no credentials row: epoch 0).
PERSONAL_TOKEN = f"""
SELECT m.{M.role}, {columns(PersonalToken, "t")}, {columns(User, "u")}, {columns(Organization, "o")}
FROM {T} t
JOIN {U} u ON u.{U.id} = t.{T.user}
JOIN {O} o ON o.{O.id} = t.{T.organization}
JOIN {M} m ON m.{M.user} = t.{T.user} AND m.{M.organization} = t.{T.organization}
 AND m.{M.created_at} <= t.{T.created_at}
LEFT JOIN {K} k ON k.{K.user} = t.{T.user}
WHERE t.{T.token_hash} = %s AND t.{T.revoked_at} IS NULL AND u.{U.is_active}
 AND t.{T.credentials_epoch} = COALESCE(k.{K.epoch}, 0)
"""


# A project key that is not revoked, its organization and project, in one statement: every
# agent request (an action request above all) runs it; the ORM's select_related spelling cost
# more to compile than to answer.
def project_key_statement(*, more_columns: str = "", more_joins: str = "") -> str:
    """The project key lookup, optionally reading more (`more_columns` after the key's,
    organization's and project's; `more_joins` may use the aliases a (key), o, p). The
    parameters are those of `more_columns`, then `more_joins`, then the key's hash. Another app
    reads what its hottest request needs in the key's statement this way (escalations/sql.py),
    with the one definition of a usable key."""
    return f"""
SELECT {columns(ApiKey, "a")}, {columns(Organization, "o")}, {columns(Project, "p")}{more_columns}
FROM {A} a
JOIN {O} o ON o.{O.id} = a.{A.organization}
JOIN {P} p ON p.{P.id} = a.{A.project}{more_joins}
WHERE a.{A.token_hash} = %s AND a.{A.revoked_at} IS NULL
"""


PROJECT_KEY = project_key_statement()

# A conversation's feedback and judge scores, oldest first: every claim sends them with the item.
CONVERSATION_FEEDBACK = f"SELECT {columns(Feedback, 'f')} FROM {F} f WHERE f.{F.conversation} = %s ORDER BY f.{F.id}"
CONVERSATION_JUDGE_SCORES = (
    f"SELECT {columns(JudgeScore, 's')} FROM {J} s WHERE s.{J.conversation} = %s ORDER BY s.{J.id}"
)

# Full-text search over conversations (reviewapp.textsearch reads queries; the index is built by
# migration 0007). PostgreSQL: the GIN-indexed generated column (tests/reviewapp/test_search.py
# checks the index answers); each clause is a bound `phraseto_tsquery`, which accepts any text.
# SQLite: the FTS5 table's rowids (conversation ids) matching one bound MATCH expression built
# by textsearch.fts5_match.
C = Table(Conversation)
# Not a model field: a generated column the migration adds on PostgreSQL only.
_SEARCH_DOCUMENT_POSTGRESQL = f"{C}.search_document"
_SEARCH_MATCH_SQLITE = "SELECT rowid FROM reviewapp_conversation_fts WHERE reviewapp_conversation_fts MATCH %s"


def conversation_search_condition(vendor: str, clauses: int) -> str | None:
    """A WHERE fragment true for conversations matching `clauses` bound phrases (PostgreSQL),
    or a subquery of matching ids taking one bound MATCH expression (SQLite); None elsewhere."""
    if vendor == "postgresql":
        query = " && ".join(["phraseto_tsquery('simple'::regconfig, %s)"] * clauses)
        return f"{_SEARCH_DOCUMENT_POSTGRESQL} @@ ({query})"
    if vendor == "sqlite":
        return _SEARCH_MATCH_SQLITE
    return None
