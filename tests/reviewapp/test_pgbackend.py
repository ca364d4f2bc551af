"""The PostgreSQL backend's health check (reviewapp/pgbackend): an idle, quiet connection is
usable without a statement; a connection the server has ended is not, and is replaced."""

from __future__ import annotations

import select

import psycopg
import pytest
from django.db import connection, connections

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend"),
]


@pytest.fixture
def other():
    """A second connection with the test database's settings, closed afterwards."""
    wrapper = connection.copy()
    wrapper.connect()
    yield wrapper
    wrapper.close()


def test_the_settings_use_the_backend():
    from reviewapp.pgbackend.base import DatabaseWrapper

    assert isinstance(connections["default"], DatabaseWrapper)


def test_an_idle_quiet_connection_is_usable_without_a_statement(other, monkeypatch):
    sent = []
    monkeypatch.setattr(psycopg.Cursor, "execute", lambda self, *a, **k: sent.append(a))
    assert other.is_usable() is True
    assert sent == []


def test_a_connection_in_a_transaction_gets_the_statement_check(other, monkeypatch):
    other.connection.execute("BEGIN")
    sent = []
    real = psycopg.Cursor.execute

    def spy(self, query, *args, **kwargs):
        sent.append(query)
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy)
    assert other.is_usable() is True
    assert sent == ["SELECT 1"]
    other.connection.execute("ROLLBACK")


def test_a_connection_the_server_ended_is_not_usable_and_is_replaced(other):
    pid = other.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye (an error message, then end of file) reaches the socket.
    poller = select.poll()
    poller.register(other.connection.fileno(), select.POLLIN)
    assert poller.poll(10_000)

    assert other.is_usable() is False
    other.health_check_enabled = True
    other.health_check_done = False
    other.close_if_health_check_failed()
    assert other.connection is None
    with other.cursor() as cursor:  # a new connection
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
