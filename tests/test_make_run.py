"""`make run` from a fresh state, twice: migrates, seeds, serves, prints the demo logins."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from reviewapp.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_once(var_dir: Path) -> str:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    env.update(REVIEWAPP_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        ["make", "-s", "run", f"PORT={port}", "SEED_ARGS=--conversations 40"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not come up within 120 s")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as r:
            assert r.status == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    return output


def _count(var_dir: Path, table: str) -> int:
    with sqlite3.connect(var_dir / "reviewapp.sqlite3") as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names


def test_make_run_twice_serves_the_demo_without_duplicating_it(tmp_path):
    first = _run_once(tmp_path)
    assert DEMO_PASSWORD in first
    for role in ("annotator", "approver", "engineer", "admin"):
        assert role in first
    conversations = _count(tmp_path, "reviewapp_conversation")
    users = _count(tmp_path, "auth_user")
    assert conversations > 0

    second = _run_once(tmp_path)

    assert DEMO_PASSWORD in second
    assert _count(tmp_path, "reviewapp_conversation") == conversations
    assert _count(tmp_path, "auth_user") == users
