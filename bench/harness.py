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
