"""The Celery app. Imports no domain module; tasks are found by autodiscovery."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")

app = Celery("reviewapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from reviewapp.schedules import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE
