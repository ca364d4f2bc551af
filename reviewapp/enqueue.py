"""Enqueueing that never fails the caller.

Work that must happen is recorded in the database first (an outbox row or a state column, in
the same transaction as the data), then enqueued after commit. If the broker is down, or an
eagerly run task raises, the request that stored the data has already succeeded: the error is
logged and the beat sweeper that owns the recorded work picks it up later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def delay_quietly(task: Any, *args: Any) -> bool:
    """Enqueue task(*args); False (logged) instead of raising when it could not be sent or, run
    in-process, failed."""
    try:
        # ignore_result: nobody waits for these results, and subscribing to one first meant
        # retrying the result store for 20 s per enqueue while Redis was down.
        task.apply_async(args, ignore_result=True)
    except Exception:
        logger.exception("could not run or enqueue %s%r; its sweeper will retry", task.name, args)
        return False
    return True


def delay_on_commit(task: Any, *args: Any) -> None:
    """Enqueue after the current transaction commits (at once outside one), quietly."""
    transaction.on_commit(lambda: delay_quietly(task, *args))
