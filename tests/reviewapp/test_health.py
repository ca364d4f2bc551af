"""GET /healthz: database and broker status."""

from __future__ import annotations

from unittest import mock

from django.test import Client

from reviewapp import health


def test_healthz_reports_ok_without_a_broker(db, settings):
    settings.REDIS_URL = ""

    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "in-process"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_when_the_broker_is_unreachable(db, settings):
    # Port 1 on loopback refuses connections at once.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "broker": "error: ConnectionError"}


def test_healthz_is_503_when_the_database_fails(db, settings):
    settings.REDIS_URL = ""

    def refuse():
        raise ConnectionRefusedError("database is down")

    # Patched only around the request: the test database must work again for teardown.
    with mock.patch.object(health.connection, "cursor", refuse):
        response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error: ConnectionRefusedError", "broker": "in-process"}


def test_healthz_needs_no_login_and_only_answers_get(db):
    assert Client().post("/healthz").status_code == 405
