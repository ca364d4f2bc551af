"""Process tuning for gunicorn, read automatically when it starts from the repository root.

The bind address, worker count and timeouts stay on the command line (docs/architecture.md).
"""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Load every view now, then exempt what start-up loaded from garbage collection.

    A 1,000-conversation ingest request allocates a few hundred thousand short-lived containers
    (decoded JSON, validated models, rows). Each full collection they trigger also walks the
    ~100k long-lived objects of Django's import graph, which profiled at about a third of the
    request's CPU (bench/RESULTS.md). Frozen objects are never scanned, and a larger first
    generation means fewer passes; memory held by reference cycles is still reclaimed.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and with it every view
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
