"""What the HTTP benchmarks share: Django set up from a script, a free loopback port, and the
percentile they report. Imported as a sibling (`from harness import ...`): the scripts run as
`python bench/<name>.py`, so this folder, not the repository, is on the path first."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank p-th percentile (0..100) of `values`; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(settings_module: str | None = None) -> None:
    """Django for a benchmark process: the app's settings unless the environment names others,
    or exactly `settings_module` when given (a benchmark's own settings)."""
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def cpu_seconds(*, session: int | None = None, database: str | None = None) -> dict[int, float]:
    """CPU seconds (user + system) used so far, by process id, by the live processes of one
    session (a server started with start_new_session: its arbiter and workers), or by the
    PostgreSQL backends connected to one database. Linux /proc only; empty elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    found: dict[int, float] = {}
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2 :].split()
            if session is not None:
                if int(fields[3]) != session:
                    continue
            else:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                # A backend's title: "postgres: <user> <database> <client> <state>".
                if not cmdline.startswith("postgres: ") or cmdline.split()[2:3] != [database]:
                    continue
            found[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return found


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two cpu_seconds readings: what each process alive at the second used
    since the first (all of it, if it started since). A process that exited in between drops
    out with what it used (a database connection closed at CONN_MAX_AGE): a slight undercount."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
