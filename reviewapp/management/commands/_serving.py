"""What `serve` (gunicorn) and `devserver` (Django's autoreloader) share: the jobs and the banner."""

from __future__ import annotations

import os
from collections.abc import Callable

from django.conf import settings

from reviewapp import hooks


def scheduler_start() -> bool:
    """Run the periodic jobs in this process when there is no Celery beat (REDIS_URL unset).

    The caller must be the one process that serves: two schedulers would run every job twice.
    """
    if settings.REDIS_URL:
        return False
    from reviewapp.celery import app
    from reviewapp.scheduler import InProcessScheduler
    from reviewapp.schedules import BEAT_SCHEDULE

    app.loader.import_default_modules()
    InProcessScheduler(BEAT_SCHEDULE).start()
    return True


def banner_write(write: Callable[[str], object], *, url: str) -> None:
    """The address really served, where the jobs run, and what apps add (the demo app: its logins,
    once seeded)."""
    write(f"Serving {url}")
    write(
        "Background jobs run in-process (REDIS_URL is not set)."
        if not settings.REDIS_URL
        else "Background jobs go to Celery at REDIS_URL: start a worker and beat."
    )
    if os.environ.get("REVIEWAPP_QUIET") == "1":
        return
    for line in hooks.serve_banner_lines():
        write(line)
