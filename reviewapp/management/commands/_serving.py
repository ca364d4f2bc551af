"""What `serve` (gunicorn) and `devserver` (Django's autoreloader) share: the jobs and the banner."""

from __future__ import annotations

import os
from collections.abc import Callable

from django.conf import settings

from reviewapp.demo import DEMO_ORG, DEMO_PASSWORD, DEMO_USERS, RETAIL_ORG, RETAIL_USERS
from reviewapp.models import Organization


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
    """The address really served, where the jobs run, and the demo logins when there is a demo."""
    write(f"Serving {url}")
    write(
        "Background jobs run in-process (REDIS_URL is not set)."
        if not settings.REDIS_URL
        else "Background jobs go to Celery at REDIS_URL: start a worker and beat."
    )
    if os.environ.get("REVIEWAPP_QUIET") == "1" or not Organization.objects.filter(slug=DEMO_ORG).exists():
        return
    write(f"Demo logins for organization '{DEMO_ORG}' (password for each: {DEMO_PASSWORD}):")
    retail_roles = dict(RETAIL_USERS)
    for username, role in DEMO_USERS:
        notes = [f"{retail_roles[username]} in '{RETAIL_ORG}' too"] if username in retail_roles else []
        if username == "admin":
            notes.append("staff for /admin/")
        extra = f"  ({'; '.join(notes)})" if notes else ""
        write(f"  {username:<10} {role:<10}{extra}".rstrip())
