"""Every periodic job in one place. Celery beat reads BEAT_SCHEDULE in production; without
Redis, `manage.py serve` runs the same entries from an in-process scheduler."""

from __future__ import annotations

from datetime import timedelta

BEAT_SCHEDULE: dict[str, dict] = {
    # Expired personal tokens are dead already (auth checks expiry); sweeping them daily keeps
    # the token table small and the audit trail honest about when access ended.
    "personal-tokens-expire": {
        "task": "reviewapp.tasks.personal_tokens_expire",
        "schedule": timedelta(hours=24),
    },
}
