"""The claim lock (one person's claims in a queue take turns) on PostgreSQL, when things go
wrong: a lock left behind on another session (what a transaction-mode pooler does to a session
lock) no longer makes a person's claims wait forever, an error after the lock was taken gives
it back, and an unlock that finds no lock switches the process to transaction-level locks."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import connection, transaction

from labeling import lock_objects, services, sql
from labeling.models import Assignment
from reviewapp import rawsql
from reviewapp.errors import ApplicationError
from tests.concurrency.racing import join_all, start_thread, wait_until_blocked
from tests.factories import ConversationFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch):
    # The switch to transaction-level locks is per process; each test starts without it.
    monkeypatch.setattr(lock_objects, "_session_locks_failed", False)


def _setup(n_items: int = 3):
    project = ProjectFactory()
    queue = make_queue(project)
    conversations = [ConversationFactory(project=project) for _ in range(n_items)]
    services.queue_items_add(queue=queue, conversation_ids=[c.pk for c in conversations], user=None)
    person = UserFactory(username="stuck")
    MembershipFactory(user=person, organization=project.organization, role="annotator")
    return queue, person


def _key_sql(fn: str) -> str:
    return f"SELECT {fn}({sql._CLAIM_LOCK_KEY})"


def _my_advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return cursor.fetchone()[0]


def _hold_lock_elsewhere(queue, person):
    """Another session takes the person's claim lock and keeps it, as a server connection
    behind a pooler keeps a session lock whose unlock went to another one."""
    taken, release = threading.Event(), threading.Event()

    def holder():
        rawsql.fetchone(_key_sql("pg_advisory_lock"), {"queue": queue.pk, "user": person.pk})
        taken.set()
        assert release.wait(60), "never released"
        rawsql.fetchone(_key_sql("pg_advisory_unlock"), {"queue": queue.pk, "user": person.pk})

    results: dict = {}
    thread = start_thread("holder", holder, results)
    assert taken.wait(10)
    return thread, release, results


def test_a_lock_left_on_another_session_delays_a_claim_by_a_bounded_wait_only(monkeypatch, caplog):
    queue, person = _setup()
    monkeypatch.setattr(lock_objects, "CLAIM_LOCK_TIMEOUT_MS", 500)
    holder, release, holder_results = _hold_lock_elsewhere(queue, person)
    results: dict = {}
    try:
        started = time.monotonic()
        claim = start_thread("claim", lambda: services.item_claim(queue=queue, user=person), results)
        wait_until_blocked(count=1, wait_event="advisory")  # it really met the lock and waited
        claim.join(10)
        waited = time.monotonic() - started
        assert not claim.is_alive(), "the claim is still waiting for a lock nobody will give back"
    finally:
        release.set()
        join_all(holder)

    assert isinstance(results["claim"], Assignment), results
    assert 0.5 <= waited < 5
    assert holder_results == {"holder": None}
    assert list(Assignment.objects.filter(user=person).values_list("item_id", flat=True)) == [results["claim"].item_id]
    assert "claim lock: waited 500 ms" in caplog.text
    assert lock_objects.session_locks_usable() is True  # a timeout is not proof of a pooler


def test_inside_a_transaction_a_lock_left_behind_ends_the_claim_with_503(monkeypatch):
    queue, person = _setup()
    monkeypatch.setattr(lock_objects, "CLAIM_LOCK_TIMEOUT_MS", 300)
    holder, release, _ = _hold_lock_elsewhere(queue, person)
    results: dict = {}

    def claim_in_a_transaction():
        with transaction.atomic():
            return services.item_claim(queue=queue, user=person)

    try:
        claim = start_thread("claim", claim_in_a_transaction, results)
        claim.join(10)
        assert not claim.is_alive(), "the claim is still waiting for a lock nobody will give back"
    finally:
        release.set()
        join_all(holder)

    assert isinstance(results["claim"], ApplicationError)
    assert results["claim"].status_code == 503
    assert not Assignment.objects.filter(user=person).exists()
    # The caller's lock_timeout is untouched outside the claim's own statement.
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"


def test_the_lock_timeout_lasts_only_for_the_claim_statement():
    queue, person = _setup()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '7s'")
        assert services.item_claim(queue=queue, user=person) is not None
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "7s"
    assert services.item_claim(queue=queue, user=person, exclude_item_id=Assignment.objects.get().item_id)
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"


def test_an_error_right_after_the_locked_precheck_gives_the_lock_back(monkeypatch):
    # A session lock outlives the failure of the statement or request that took it: before,
    # an error between the precheck and the claim's try/finally left it held for the life of
    # the connection, and this person's next claims on any other connection waited forever.
    queue, person = _setup()
    real_precheck = lock_objects.claim_precheck

    def precheck_then_fail(**kwargs):
        real_precheck(**kwargs)
        raise RuntimeError("cancelled right after the lock was taken")

    monkeypatch.setattr(lock_objects, "claim_precheck", precheck_then_fail)

    with pytest.raises(RuntimeError):
        services.item_claim(queue=queue, user=person)

    assert _my_advisory_locks() == 0
    monkeypatch.setattr(lock_objects, "claim_precheck", real_precheck)
    results: dict = {}
    other = start_thread("other connection", lambda: services.item_claim(queue=queue, user=person), results)
    join_all(other, timeout=10)
    assert isinstance(results["other connection"], Assignment)


def test_an_unlock_that_reaches_another_session_switches_to_transaction_locks(monkeypatch, caplog):
    # What a transaction-mode pooler does: the unlock runs on another server session, which
    # holds no lock (pg_advisory_unlock answers false) while the lock stays on the first.
    queue, person = _setup()
    other = connection.copy()
    real_fetchone = rawsql.fetchone

    def fetchone(statement, params):
        if statement == sql.CLAIM_UNLOCK:
            with other.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchone()
        return real_fetchone(statement, params)

    monkeypatch.setattr(rawsql, "fetchone", fetchone)
    try:
        with caplog.at_level(logging.ERROR, logger="labeling.lock_objects"):
            first = services.item_claim(queue=queue, user=person)
        assert first is not None
        assert lock_objects.session_locks_usable() is False
        assert "set DB_SESSION_LOCKS=0" in caplog.text
        assert _my_advisory_locks() == 1  # the lock the unlock missed (it is truly left behind)
        rawsql.execute(_key_sql("pg_advisory_unlock"), {"queue": queue.pk, "user": person.pk})

        # From now on this process's claims take transaction-level locks: nothing stays held.
        monkeypatch.setattr(rawsql, "fetchone", real_fetchone)
        scopes: list[str | None] = []
        real_precheck = lock_objects.claim_precheck

        def precheck(**kwargs):
            scopes.append(kwargs.get("lock"))
            return real_precheck(**kwargs)

        monkeypatch.setattr(lock_objects, "claim_precheck", precheck)
        second = services.item_claim(queue=queue, user=person, exclude_item_id=first.item_id)
        assert scopes == ["transaction"]
        assert second is not None and second.item_id != first.item_id
        assert _my_advisory_locks() == 0
    finally:
        other.close()
