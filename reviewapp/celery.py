"""The Celery app. Imports no domain module; tasks are found by autodiscovery."""

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")

app = Celery("reviewapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from reviewapp.schedules import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE


# Tasks that leave the default queue, by name. Webhook sends wait on other people's servers
# (up to 10 s each, 8 attempts): on the default queue a dead receiver's backlog would hold up
# the 15 s tier timeout sweep. Production runs a worker for the webhooks queue (README).
WEBHOOK_TASKS = frozenset({"escalations.tasks_webhooks.delivery_send"})


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str] | None:
    """Celery router (settings.CELERY_TASK_ROUTES). Reads the queue name when a task is sent,
    so tests can give each test worker its own webhooks queue."""
    if name in WEBHOOK_TASKS:
        from django.conf import settings

        return {"queue": settings.WEBHOOK_CELERY_QUEUE}
    return None
