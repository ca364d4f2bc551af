"""Waking agents that wait on an action (`GET /api/v1/actions/{id}?wait=N`)."""

from __future__ import annotations


def action_decided_publish(*, action_id: int) -> None:
    """After commit, tell waiters on `action_id` that it was decided. Placeholder until the
    waiting work lands: waiters poll."""
