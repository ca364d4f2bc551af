"""A tiny in-process stand-in for Celery beat, for the embedded set-up without Redis.

It runs the entries of `schedules.BEAT_SCHEDULE` in a daemon thread of the dev server, calling
each task in-process when due. Production runs `celery beat` instead; both read one schedule.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from celery import current_app
from celery.schedules import schedule as celery_schedule
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


class InProcessScheduler(threading.Thread):
    def __init__(self, entries: dict[str, dict], tick_seconds: float = 1.0):
        super().__init__(name="reviewapp-scheduler", daemon=True)
        self.tick_seconds = tick_seconds
        self.stop_event = threading.Event()
        now = timezone.now()
        self.entries = []
        for name, entry in entries.items():
            sched = entry["schedule"]
            if isinstance(sched, timedelta | int | float):
                sched = celery_schedule(run_every=sched)
            # Start as if each job had just run, so the server comes up without a burst of work.
            self.entries.append({"name": name, "task": entry["task"], "schedule": sched, "last": now})

    def run_pending(self) -> list[str]:
        ran = []
        for entry in self.entries:
            due, _next = entry["schedule"].is_due(entry["last"])
            if not due:
                continue
            entry["last"] = timezone.now()
            try:
                current_app.tasks[entry["task"]].apply()
                ran.append(entry["name"])
            except Exception:
                logger.exception("scheduled job %s failed", entry["name"])
        return ran

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.run_pending()
            # This thread holds its own connection; drop it when stale, as a request would.
            close_old_connections()
            time.sleep(self.tick_seconds)
