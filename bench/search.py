"""Conversation search at a million conversations on PostgreSQL.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench .venv/bin/python bench/search.py

Builds (once; later runs reuse it) an organization "bench-search" with `--rows` conversations
in two projects, written by `INSERT ... SELECT generate_series` in chunks: a system prompt (not
indexed), a user turn and an agent turn of words drawn from a skewed vocabulary (so some words
are in most conversations and some in a handful), a booking reference unique to each
conversation, and an "asked for a human" signal on one in twenty. The search index is dropped
while the rows go in and rebuilt after (with its definition read from the database, so it is
the migration's). Then it runs the searches below through `selectors.conversation_list` (the
query the API runs, first page of 50) and through the API view in-process, `--rounds` times
each, and prints p50/p95/max per search and overall. Exits 0 when the overall p95 of the API
is under 100 ms. Refuses to run on SQLite. `--drop` removes the bench organization.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import percentile, setup_django

TARGET_P95_MS = 100.0
ORG_SLUG = "bench-search"
CHUNK = 100_000

# Support-chat words, most frequent first: the draw below is skewed towards the head, so
# "flight" is in most conversations and the tail words in a few hundred.
_HEAD = """
flight booking refund please help change baggage ticket seat cancel delayed hotel payment card
voucher airport gate passport upgrade lounge meal wifi infant pet wheelchair visa insurance
compensation complaint manager human agent luggage lost damaged stroller connection missed
overbooked strike weather diversion rebooking points loyalty status receipt invoice chargeback
currency fare difference
"""
HEAD_WORDS = _HEAD.split()
VOCABULARY = 20_000  # head words, then synthetic tail words "w<n>"


def build(*, rows: int) -> None:
    from django.db import connection

    from reviewapp import services
    from reviewapp.models import Conversation, ConversationSignal, Organization

    org = Organization.objects.filter(slug=ORG_SLUG).first()
    if org is not None:
        have = Conversation.objects.filter(organization=org).count()
        if have >= rows:
            print(f"reusing {have:,} conversations of organization {ORG_SLUG}")
            return
        print(f"organization {ORG_SLUG} has {have:,} conversations, not {rows:,}: rebuilding")
        drop()
    org = services.organization_create(slug=ORG_SLUG, name="Search bench")
    projects = [
        services.project_create(organization=org, slug="support", name="Support"),
        services.project_create(organization=org, slug="sales", name="Sales"),
    ]
    c, s = Conversation._meta.db_table, ConversationSignal._meta.db_table
    index_def = importlib.import_module("reviewapp.migrations.0007_conversation_search").POSTGRESQL_FORWARD[-1]
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS conv_search_document")
    words = "ARRAY[" + ",".join(f"'{w}'" for w in HEAD_WORDS) + "]"
    # A correlated subquery (it names g.i) so each row draws its own words; power(random(), 4)
    # skews the draw to the head of the vocabulary.
    sentence = (
        "(SELECT string_agg(CASE WHEN k <= {n} THEN ({words})[k] ELSE 'w' || k END, ' ') FROM ("
        "SELECT 1 + floor(power(random(), 4) * {vocab})::int AS k FROM generate_series(1, {length}) AS x "
        "WHERE g.i IS NOT NULL) AS drawn)"
    )
    user = sentence.format(n=len(HEAD_WORDS), words=words, vocab=VOCABULARY, length=14)
    agent = sentence.format(n=len(HEAD_WORDS), words=words, vocab=VOCABULARY, length=24)
    started = time.perf_counter()
    try:
        _insert(org=org, projects=projects, rows=rows, user=user, agent=agent, started=started)
    finally:
        # The migration's own statement, so the bench measures the index the app ships.
        with connection.cursor() as cursor:
            index_started = time.perf_counter()
            cursor.execute("SET maintenance_work_mem = '512MB'")
            cursor.execute(index_def)
            print(f"  search index built in {time.perf_counter() - index_started:.0f} s", flush=True)
            cursor.execute(f"ANALYZE {c}")
            cursor.execute(f"ANALYZE {s}")
    print(f"built {rows:,} conversations in {time.perf_counter() - started:.0f} s")


def _insert(*, org, projects, rows: int, user: str, agent: str, started: float) -> None:
    from django.db import connection, transaction

    from reviewapp.models import Conversation, ConversationSignal, SignalKind, SignalSource

    c, s = Conversation._meta.db_table, ConversationSignal._meta.db_table
    for start in range(0, rows, CHUNK):
        stop = min(rows, start + CHUNK)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {c}")  # noqa: S608
            floor = cursor.fetchone()[0]
            cursor.execute(
                f"""
                INSERT INTO {c} (organization_id, project_id, external_id, messages, occurred_at, received_at,
                    agent_version, end_user_id, tags, metadata, feedback_rating, user_rephrased, escalated_by_user)
                SELECT %s, CASE WHEN g.i %% 5 = 0 THEN %s ELSE %s END, 'conv-' || g.i,
                    jsonb_build_array(
                        jsonb_build_object('role', 'system', 'content', 'You are the assistant of Skyline Air.'),
                        jsonb_build_object('role', 'user', 'content', {user} || ' booking REF' || g.i),
                        jsonb_build_object('role', 'assistant', 'content', {agent})),
                    now() - make_interval(secs => (%s - g.i) * 2), now() - make_interval(secs => (%s - g.i) * 2),
                    '2025.01.' || (g.i %% 3), 'user-' || (g.i %% 50000), '[]', '{{}}', NULL, false, false
                FROM generate_series(%s, %s) AS g(i)
                """,  # noqa: S608 - table names from _meta, values bound
                [org.pk, projects[1].pk, projects[0].pk, rows, rows, start + 1, stop],
            )
            cursor.execute(
                f"""
                INSERT INTO {s} (conversation_id, project_id, kind, source, turn, evidence, created_at)
                SELECT id, project_id, %s, %s, 1, 'talk to a human', now() FROM {c}
                WHERE organization_id = %s AND id > %s AND id %% 20 = 0
                """,  # noqa: S608
                [SignalKind.ASKED_FOR_HUMAN, SignalSource.DERIVED, org.pk, floor],
            )
        print(f"  {stop:,} rows, {time.perf_counter() - started:.0f} s", flush=True)


def drop() -> None:
    from django.db import connection

    from reviewapp.models import Conversation, Organization

    org = Organization.objects.filter(slug=ORG_SLUG).first()
    if org is None:
        return
    with connection.cursor() as cursor:
        # Row-at-a-time cascades over a million conversations take minutes; the bench's rows
        # have no labels or actions, only signals.
        cursor.execute(
            "DELETE FROM reviewapp_conversationsignal WHERE project_id IN "
            "(SELECT id FROM reviewapp_project WHERE organization_id = %s)",
            [org.pk],
        )
        cursor.execute(f"DELETE FROM {Conversation._meta.db_table} WHERE organization_id = %s", [org.pk])  # noqa: S608
    org.delete()


SEARCHES: list[tuple[str, dict[str, str]]] = [
    ("common word", {"q": "flight"}),
    ("mid word", {"q": "compensation"}),
    ("tail word", {"q": "w1500"}),
    ("rare word", {"q": "w19000"}),
    ("two words", {"q": "refund voucher"}),
    ("phrase", {"q": '"booking refund"'}),
    ("booking reference", {"q": "REF{ref}"}),
    ("no match", {"q": "zzzunknownzzz"}),
    ("word + project", {"q": "baggage", "project": "sales"}),
    ("word + asked for human", {"q": "delayed", "asked_for_human": "true"}),
    ("rare + asked for human", {"q": "w9000", "asked_for_human": "true"}),
    ("word + last 2 days", {"q": "passport", "occurred_after": "{two_days_ago}"}),
]


def measure(*, rounds: int, rows: int) -> list[float]:
    import datetime as dt

    from django.contrib.auth import get_user_model
    from rest_framework.test import APIRequestFactory

    from reviewapp import apis, selectors, services
    from reviewapp.models import Membership, Organization, Role

    org = Organization.objects.get(slug=ORG_SLUG)
    user = get_user_model().objects.create_user(username=f"bench-search-{time.time_ns()}")
    Membership.objects.create(user=user, organization=org, role=Role.ENGINEER)
    token = services.personal_token_create(user=user, organization=org).raw
    two_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat()
    factory = APIRequestFactory()
    view = apis.ConversationsApi.as_view()
    api_all: list[float] = []
    print(f"\n{'search':<24} {'page':>5} {'selector p50/p95 ms':>20} {'API p50/p95/max ms':>22}")
    try:
        for name, template in SEARCHES:
            params = {k: v.format(ref=rows // 2, two_days_ago=two_days_ago) for k, v in template.items()}
            after = params.get("occurred_after")
            filters = selectors.ConversationFilters(
                q=params["q"],
                project=selectors.project_get_by_slug(organization=org, slug=params.get("project", "")),
                asked_for_human=True if "asked_for_human" in params else None,
                occurred_after=dt.datetime.fromisoformat(after) if after else None,
            )
            selector_ms: list[float] = []
            api_ms: list[float] = []
            for _ in range(rounds):
                started = time.perf_counter()
                page = list(selectors.conversation_list(organization=org, filters=filters)[:51])
                selector_ms.append((time.perf_counter() - started) * 1000)
                # The whole API request in-process: token lookup, filters, the query, its
                # judge-score prefetch and the JSON of the first page of 50.
                request = factory.get(
                    "/api/v1/conversations", params, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1"
                )
                started = time.perf_counter()
                response = view(request)
                response.render()
                api_ms.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (response.status_code, response.content[:300])
            api_all.extend(api_ms)
            selector = f"{percentile(selector_ms, 50):>9.1f} /{percentile(selector_ms, 95):>7.1f}"
            api = f"{percentile(api_ms, 50):>8.1f} /{percentile(api_ms, 95):>6.1f} /{max(api_ms):>6.1f}"
            print(
                f"{name:<24} {len(page[:50]):>5} {selector} {api}",
                flush=True,
            )
    finally:
        user.delete()
    return api_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--drop", action="store_true", help="remove the bench organization and exit")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql")):
        print("bench/search.py measures PostgreSQL: set DATABASE_URL", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "")
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if args.drop:
        drop()
        return 0
    build(rows=args.rows)
    if args.build_only:
        return 0
    api_ms = measure(rounds=args.rounds, rows=args.rows)
    p95 = percentile(api_ms, 95)
    ok = p95 < TARGET_P95_MS
    print(
        f"\nSUMMARY rows={args.rows} searches={len(api_ms)} p50={percentile(api_ms, 50):.1f}ms "
        f"p95={p95:.1f}ms max={max(api_ms):.1f}ms target_p95<{TARGET_P95_MS:.0f}ms {'MET' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
