"""`manage.py serve`: the dev server plus the in-process scheduler (for set-ups without Redis)."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as RunserverCommand

from reviewapp.demo import DEMO_ORG, DEMO_PASSWORD, DEMO_USERS
from reviewapp.models import Organization


class Command(RunserverCommand):
    help = "Run the development server; without REDIS_URL also run periodic jobs in-process."

    def inner_run(self, *args: object, **options: object) -> None:
        # With the autoreloader this runs in the child process only, so the scheduler and the
        # banner are not duplicated by the watcher process.
        if not settings.REDIS_URL:
            from reviewapp.celery import app
            from reviewapp.scheduler import InProcessScheduler
            from reviewapp.schedules import BEAT_SCHEDULE

            app.loader.import_default_modules()
            InProcessScheduler(BEAT_SCHEDULE).start()
            self.stdout.write("Background jobs run in-process (REDIS_URL is not set).")
        if Organization.objects.filter(slug=DEMO_ORG).exists() and os.environ.get("REVIEWAPP_QUIET") != "1":
            self.stdout.write(f"Demo logins (password for each: {DEMO_PASSWORD}):")
            for username, role in DEMO_USERS:
                self.stdout.write(f"  {username:<10} {role}")
        super().inner_run(*args, **options)
