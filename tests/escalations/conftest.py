"""Until escalations/policies.py (written in parallel) is merged, a private stand-in with its
interface takes its place for these tests (never in app code)."""

from __future__ import annotations

import importlib.util
import sys

if importlib.util.find_spec("escalations.policies") is None:  # pragma: no cover - temporary
    from tests.escalations import policies_standin

    sys.modules["escalations.policies"] = policies_standin
    import escalations

    escalations.policies = policies_standin  # type: ignore[attr-defined]
