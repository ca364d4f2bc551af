"""`make run` from a fresh state, twice: migrates, seeds, serves with gunicorn, prints the
address it serves and the demo logins once."""

from __future__ import annotations

import re
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from demo.scenarios import DEMO_PASSWORD, DEMO_USERS
from tests._make_run import make_run

# Builds its own environment (a fresh `make run` on SQLite, or settings in a subprocess without
# DATABASE_URL/REDIS_URL): the same on either CI pass, so .ci/run's SQLite pass leaves it out.
pytestmark = pytest.mark.backend_independent


def _run_once(var_dir: Path) -> tuple[str, dict[str, str]]:
    with make_run(var_dir) as running:
        with urllib.request.urlopen(f"http://127.0.0.1:{running.port}/login/", timeout=5) as r:
            assert r.status == 200
        port = running.port
    return running.output, {"port": str(port), **running.healthz_headers}


def _count(var_dir: Path, table: str) -> int:
    with sqlite3.connect(var_dir / "reviewapp.sqlite3") as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names


def _assert_banner(output: str, port: str) -> None:
    lines = output.splitlines()
    assert f"Serving http://127.0.0.1:{port}/" in lines
    assert set(re.findall(r"http://[\w.]+:(\d+)", output)) == {port}
    assert output.count(DEMO_PASSWORD) == 1
    for username, _role in DEMO_USERS:
        assert sum(line.split()[:1] == [username] for line in lines) == 1, username
    assert len(re.findall(r"Periodic jobs run in this worker \(pid \d+\)", output)) == 1
    assert "No hostname was supplied" not in output
    assert "development server" not in output


def test_make_run_twice_serves_the_demo_with_gunicorn_without_duplicating_it(tmp_path):
    first, headers = _run_once(tmp_path)

    assert headers["Server"] == "gunicorn"
    _assert_banner(first, headers["port"])
    conversations = _count(tmp_path, "reviewapp_conversation")
    users = _count(tmp_path, "auth_user")
    assert conversations > 0

    second, headers = _run_once(tmp_path)

    _assert_banner(second, headers["port"])
    assert _count(tmp_path, "reviewapp_conversation") == conversations
    assert _count(tmp_path, "auth_user") == users
