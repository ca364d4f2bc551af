"""Full-text search over what the end user, the agent and its tools said.

PostgreSQL: a stored generated tsvector column over `messages` and a GIN index on it (no
write in the ingest code: the database computes the document as it inserts the row; the
column is not a model field, Django never names it), the index built CONCURRENTLY. SQLite: an FTS5 table kept in step by triggers, so every
path that writes a conversation (ingest, the demo, tests' factories) is indexed the same way.

The statements are copied here, not imported from reviewapp.sql: a migration must not change
when the code does. tests/reviewapp/test_search.py checks that the query's expression is still
the indexed column.
"""

# ruff: noqa: S608 - the statements are built from this file's own text, no value from outside
from django.db import migrations

# System and developer prompts are left out: they repeat in every conversation of a project,
# so every conversation would match their words, and they would multiply the index's size.
_DOCUMENT = """jsonb_to_tsvector('simple'::regconfig,
    jsonb_path_query_array(messages,
        '$[*] ? (@.role != "system" && @.role != "developer").content ? (@.type() == "string")')
    || jsonb_path_query_array(messages,
        '$[*] ? (@.role != "system" && @.role != "developer").content[*].text'),
    '["string"]')"""
POSTGRESQL_FORWARD = [
    # Stored, not only indexed: a search sorted newest first often walks recent conversations
    # and checks each one (when its words are common), and recomputing the document there
    # cost ~0.2 ms a row against a few microseconds to read it. Adding the column rewrites the
    # table once.
    f"ALTER TABLE reviewapp_conversation ADD COLUMN IF NOT EXISTS search_document tsvector "
    f"GENERATED ALWAYS AS ({_DOCUMENT}) STORED",
    # The planner's estimate for a word outside the statistics' most common list is a fraction
    # of the least common one listed: with the default target, a word in no conversation was
    # estimated at ~1,000 rows and searched by walking the whole table newest first. A long
    # list makes rare words look rare.
    "ALTER TABLE reviewapp_conversation ALTER COLUMN search_document SET STATISTICS 10000",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS conv_search_document ON reviewapp_conversation "
    "USING gin (search_document)",
]
POSTGRESQL_BACKWARD = [
    "DROP INDEX CONCURRENTLY IF EXISTS conv_search_document",
    "ALTER TABLE reviewapp_conversation DROP COLUMN IF EXISTS search_document",
]

_SQLITE_DOCUMENT = """
    SELECT coalesce(group_concat(t, ' '), '') FROM (
        SELECT json_extract(m.value, '$.content') AS t FROM json_each({row}.messages) AS m
        WHERE json_extract(m.value, '$.role') NOT IN ('system', 'developer')
          AND json_type(m.value, '$.content') = 'text'
        UNION ALL
        SELECT json_extract(p.value, '$.text') FROM json_each({row}.messages) AS m, json_each(m.value, '$.content') AS p
        WHERE json_extract(m.value, '$.role') NOT IN ('system', 'developer')
          AND json_type(m.value, '$.content') = 'array'
          AND json_type(p.value, '$.text') = 'text'
    )
"""
SQLITE_FORWARD = [
    # unicode61 with the same lower-casing and no stemming as PostgreSQL's 'simple'
    # configuration; diacritics folded so "cafe" finds "café".
    "CREATE VIRTUAL TABLE IF NOT EXISTS reviewapp_conversation_fts USING fts5(body, tokenize='unicode61 remove_diacritics 2')",
    # OR REPLACE: a rowid left behind (a test database whose sequences were reset) is
    # overwritten rather than failing the insert of the conversation.
    "CREATE TRIGGER IF NOT EXISTS reviewapp_conversation_fts_insert AFTER INSERT ON reviewapp_conversation BEGIN "
    "INSERT OR REPLACE INTO reviewapp_conversation_fts(rowid, body) SELECT new.id, ("
    + _SQLITE_DOCUMENT.format(row="new")
    + "); END",
    "CREATE TRIGGER IF NOT EXISTS reviewapp_conversation_fts_update AFTER UPDATE OF messages ON reviewapp_conversation "
    "BEGIN INSERT OR REPLACE INTO reviewapp_conversation_fts(rowid, body) SELECT new.id, ("
    + _SQLITE_DOCUMENT.format(row="new")
    + "); END",
    "CREATE TRIGGER IF NOT EXISTS reviewapp_conversation_fts_delete AFTER DELETE ON reviewapp_conversation "
    "BEGIN DELETE FROM reviewapp_conversation_fts WHERE rowid = old.id; END",
    # Conversations stored before this migration.
    "INSERT OR REPLACE INTO reviewapp_conversation_fts(rowid, body) SELECT c.id, ("
    + _SQLITE_DOCUMENT.format(row="c")
    + ") FROM reviewapp_conversation AS c",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS reviewapp_conversation_fts_insert",
    "DROP TRIGGER IF EXISTS reviewapp_conversation_fts_update",
    "DROP TRIGGER IF EXISTS reviewapp_conversation_fts_delete",
    "DROP TABLE IF EXISTS reviewapp_conversation_fts",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor) -> None:
        # Other databases get no full-text index; search there answers 400 (selectors).
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("reviewapp", "0006_conversation_signals"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRESQL_BACKWARD, "sqlite": SQLITE_BACKWARD}),
            elidable=False,
        ),
    ]
