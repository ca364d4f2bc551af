"""Helpers for threaded PostgreSQL race tests: run a side in a thread, hold it inside its
transaction at a chosen call, and prove from the test's own connection that the other side
really waited on a lock there (not only that the outcome came out right).

A race test then reads:

    hold = hold_call(monkeypatch, lock_objects, "item_relock", thread="edit")
    edit = start_thread("edit", lambda: services.label_submit(...), results)
    hold.wait_inside()
    review = start_thread("review", lambda: services.item_review(...), results)
    wait_until_blocked(count=1)               # the review waits on the edit's row lock
    assert "review" not in results            # ... and did not finish before the release
    hold.release()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

# Generous: a blocked backend shows up in pg_stat_activity within milliseconds; the bound only
# keeps a broken test from hanging the run.
TIMEOUT = 20.0
_POLL = 0.01


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Poll `predicate` until it returns something truthy or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(_POLL)


def lock_waiters(wait_event: str | None = None) -> list[tuple[int, str]]:
    """(pid, wait_event) of the other sessions on this database waiting for a heavyweight lock
    right now: a row lock ("transactionid", "tuple"), an advisory lock ("advisory"), ...
    Read from the caller's connection, which must not be one of the racers."""
    with connection.cursor() as cursor:
        # Activity is snapshotted once per transaction: drop the snapshot so a caller inside
        # a transaction still sees the present.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid, wait_event FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            " AND (%s::text IS NULL OR wait_event = %s::text) ORDER BY pid",
            [wait_event, wait_event],
        )
        return [tuple(row) for row in cursor.fetchall()]


def wait_until_blocked(*, count: int = 1, wait_event: str | None = None, timeout: float = TIMEOUT) -> list:
    """Wait until at least `count` other sessions are waiting on a lock (of kind `wait_event`,
    if given), and fail the test if that does not happen within `timeout`: the race it sets up
    never took place. Returns the waiters."""
    waiters = wait_for(lambda: (w := lock_waiters(wait_event)) and len(w) >= count and w, timeout)
    if not waiters:
        pytest.fail(f"no {count} session(s) ever waited on a lock ({wait_event or 'any'}): {lock_waiters()}")
    return waiters


def start_thread(name: str, target: Callable[[], Any], results: dict[str, Any]) -> threading.Thread:
    """Run `target` in a thread named `name` on its own connection; its return value (or the
    exception it raised) lands in `results[name]` once it is done."""

    def run() -> None:
        try:
            results[name] = target()
        except BaseException as exc:  # reported by the assertions on `results`
            results[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def join_all(*threads: threading.Thread, timeout: float = 60.0) -> None:
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), f"{thread.name} is still running: deadlocked or never released"


class Hold:
    """Stops the first matching call of a function in its thread, inside whatever transaction
    and locks that thread holds, until the test releases it."""

    def __init__(self, *, thread: str | None, before: bool) -> None:
        self.thread = thread
        self.before = before
        self.inside = threading.Event()
        self._release = threading.Event()
        self._taken = threading.Lock()
        self._used = False

    def _mine(self) -> bool:
        if self.thread is not None and threading.current_thread().name != self.thread:
            return False
        with self._taken:
            if self._used:
                return False
            self._used = True
            return True

    def _stop(self) -> None:
        self.inside.set()
        assert self._release.wait(TIMEOUT * 2), "never released"

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.before and self._mine():
                self._stop()
            result = original(*args, **kwargs)
            # Held after a call that returned: a call that raised (a racer's insert hitting the
            # unique index) leaves the hold to the next one.
            if not self.before and self._mine():
                self._stop()
            return result

        return wrapper

    def wait_inside(self, timeout: float = TIMEOUT) -> None:
        assert self.inside.wait(timeout), "the held side never reached the hold"

    def release(self) -> None:
        self._release.set()


def hold_call(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, *, thread: str | None = None, before: bool = False
) -> Hold:
    """Patch `owner.name` so that its first call (in thread `thread`, or in any thread) stops,
    after the call returned (or `before` it runs), until `Hold.release()`."""
    hold = Hold(thread=thread, before=before)
    monkeypatch.setattr(owner, name, hold.wrap(getattr(owner, name)))
    return hold
