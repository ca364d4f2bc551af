"""Start `make run` on a free port with its own var dir, as a newcomer would, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_env(var_dir: Path) -> dict[str, str]:
    """The environment of a fresh clone: no database, broker, key or DEBUG of the test run's."""
    # MAKELEVEL/MAKEFLAGS too: under `make test` they would make every README `make` a sub-make.
    unset = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "MAKELEVEL", "MAKEFLAGS", "MFLAGS"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(REVIEWAPP_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


@dataclass
class Running:
    port: int
    healthz_headers: dict[str, str] = field(default_factory=dict)
    output: str = ""


@contextmanager
def make_run(var_dir: Path, *, seed_args: str = "--conversations 40") -> Iterator[Running]:
    """`make run` until it answers /healthz; on exit, SIGTERM to its process group. `output` is
    filled in on exit, with everything it printed."""
    running = Running(port=free_port())
    proc = subprocess.Popen(
        ["make", "-s", "run", f"PORT={running.port}", f"SEED_ARGS={seed_args}"],
        cwd=ROOT,
        env=fresh_env(var_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{running.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        running.healthz_headers = dict(r.headers)
                        break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"make run exited with {proc.returncode}:\n{proc.communicate()[0]}")
                time.sleep(0.5)
        else:
            pytest.fail("the app did not come up within 120 s")
        yield running
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        running.output, _ = proc.communicate(timeout=30)
