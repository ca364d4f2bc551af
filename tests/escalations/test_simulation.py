"""escalations/simulation.py: replaying a draft policy over past actions. No database."""

from __future__ import annotations

import math
from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from escalations import policies, simulation
from escalations.policies import ActionFacts, VelocityWindow
from escalations.simulation import History, HistoryRow, PastAction

DAY = 86400.0
T0 = 1_700_000_000.0


def past(id: int, *, at: float, action: str = "refund", amount: float = 100, confidence: float | None = 0.95,
         user: str = "cust-1", version: str = "v1", status: str = "approved", outcome: str = "approve",
         human: str = "", rule: str = "") -> PastAction:  # fmt: skip
    return PastAction(
        id=id,
        action=action,
        args={"amount": amount},
        confidence=confidence,
        risk_tags=(),
        agent_version=version,
        end_user_id=user,
        created_at=at,
        status=status,
        policy_outcome=outcome,
        matched_rule=rule,
        human=human,
    )


def row_of(p: PastAction, *, decided_at: float | None = None, with_args: bool = True) -> HistoryRow:
    return HistoryRow(
        id=p.id,
        created_at=p.created_at,
        action=p.action,
        end_user_id=p.end_user_id,
        agent_version=p.agent_version,
        counted_until=simulation.counted_until(status=p.status, decided_at=decided_at),
        args=p.args if with_args else None,
    )


def draft(*rules: dict) -> policies.Policy:
    return policies.policy_validate({"rules": list(rules)})


APPROVE_CONFIDENT = {
    "name": "confident refunds",
    "if": {"action": "refund", "confidence_at_least": 0.9},
    "then": "approve",
}
REJECT_DELETES = {"name": "no deletes", "if": {"action": "delete*"}, "then": "reject"}
VELOCITY_ESCALATE = {
    "name": "busy customers",
    "if": {
        "action": "refund",
        "velocity": [{"window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400}, "op": ">",
                      "value": 1000}],
    },
    "then": "escalate",
}  # fmt: skip


def test_report_counts_per_action_and_rule_against_what_happened():
    actions = [
        # escalated then, people rejected it; the draft would approve it: the key figure
        past(1, at=T0, confidence=0.95, status="rejected", outcome="escalate", human="rejected"),
        # escalated, approved with edited args; the draft would approve: also an override
        past(2, at=T0 + 1, confidence=0.92, user="cust-2", status="approved", outcome="escalate", human="edited"),
        # escalated, approved as asked; the draft approves: fine
        past(3, at=T0 + 2, confidence=0.97, user="cust-3", status="approved", outcome="escalate", human="approved"),
        # low confidence: the draft escalates (no rule), it was auto-approved then
        past(4, at=T0 + 3, confidence=0.5, user="cust-4", status="approved", outcome="approve"),
        # deletes: the draft rejects; people approved it then
        past(5, at=T0 + 4, action="delete_account", status="approved", outcome="escalate", human="approved"),
        past(6, at=T0 + 5, action="delete_account", status="pending", outcome="escalate", human="pending"),
    ]
    report = simulation.simulate(draft(APPROVE_CONFIDENT, REJECT_DELETES), actions, History([]))

    assert report["replayed"] == 6
    assert report["draft"] == {"approve": 3, "reject": 2, "escalate": 1}
    assert report["actual"] == {"approve": 1, "reject": 0, "escalate": 5}
    assert report["humans"] == {"approved": 2, "edited": 1, "rejected": 1, "expired": 0, "pending": 1}
    assert report["transitions"]["escalate"] == {"approve": 3, "reject": 2, "escalate": 0}
    assert report["transitions"]["approve"] == {"approve": 0, "reject": 0, "escalate": 1}
    assert report["changed"] == 6
    assert report["human_overrides_auto_approved"] == {"count": 2, "ids": [1, 2], "ids_truncated": False}
    assert report["human_rejected_auto_approved"]["ids"] == [1]
    assert report["human_edited_auto_approved"]["ids"] == [2]
    assert report["human_approved_auto_rejected"] == {"count": 1, "ids": [5], "ids_truncated": False}
    assert report["evaluation_errors"] == 0

    by_action = {row["action"]: row for row in report["by_action"]}
    assert [row["action"] for row in report["by_action"]] == ["refund", "delete_account"]  # busiest first
    assert by_action["refund"]["n"] == 4
    assert by_action["refund"]["draft"] == {"approve": 3, "reject": 0, "escalate": 1}
    assert by_action["refund"]["human_overrides_auto_approved"] == 2
    assert by_action["delete_account"]["draft"] == {"approve": 0, "reject": 2, "escalate": 0}

    rules = report["by_rule"]
    assert [(r["rule_index"], r["rule"], r["then"], r["n"]) for r in rules] == [
        (0, "confident refunds", "approve", 3),
        (1, "no deletes", "reject", 2),
        (None, simulation.NO_RULE, "escalate", 1),
    ]
    assert rules[0]["human_overrides_auto_approved"] == 2
    assert rules[0]["humans"]["rejected"] == 1


def test_unused_rules_are_listed_with_zero():
    report = simulation.simulate(draft(REJECT_DELETES), [past(1, at=T0)], History([]))
    assert report["by_rule"][0]["n"] == 0
    assert report["by_rule"][1]["n"] == 1


def test_listed_ids_are_capped_but_counts_are_whole(monkeypatch):
    monkeypatch.setattr(simulation, "LISTED_MAX", 3)
    actions = [past(i, at=T0 + i, status="rejected", outcome="escalate", human="rejected") for i in range(1, 6)]
    figure = simulation.simulate(draft(APPROVE_CONFIDENT), actions, History([]))["human_overrides_auto_approved"]
    assert figure == {"count": 5, "ids": [1, 2, 3], "ids_truncated": True}


def test_velocity_replays_the_third_refund_of_a_day():
    """Two $400 refunds earlier that day for cust-1: the third goes over 1000 and escalates;
    cust-2's first does not. The windows are answered as of each action's own time."""
    actions = [
        past(1, at=T0, amount=400),
        past(2, at=T0 + 3600, amount=400),
        past(3, at=T0 + 7200, amount=400),
        past(4, at=T0 + 7300, amount=400, user="cust-2"),
        past(5, at=T0 + DAY + 3000, amount=400),  # a day later the first has left the window
    ]
    history = History([row_of(a) for a in actions])
    results = simulation.replay(draft(VELOCITY_ESCALATE, APPROVE_CONFIDENT), actions, history)
    assert [r.verdict.outcome for r in results] == ["approve", "approve", "escalate", "approve", "escalate"]
    # 5: actions 2 and 3 are within the day before it (the day is [t - 86400, t)); 1 is not.
    explanation = results[4].verdict.explanation
    assert explanation[-1]["observed"] == 1200


def test_velocity_counts_rejected_actions_only_while_they_were_pending():
    """An earlier refund rejected before the third arrived no longer counted then; one rejected
    after it was still pending (so it counted), exactly like the live query at that moment."""
    first = past(1, at=T0, amount=400, status="rejected", outcome="escalate", human="rejected")
    second = past(2, at=T0 + 60, amount=400)
    third = past(3, at=T0 + 120, amount=400)
    rejected_before = History([row_of(first, decided_at=T0 + 100), row_of(second), row_of(third)])
    rejected_after = History([row_of(first, decided_at=T0 + 500), row_of(second), row_of(third)])
    policy = draft(VELOCITY_ESCALATE, APPROVE_CONFIDENT)
    assert simulation.replay(policy, [third], rejected_before)[0].verdict.outcome == "approve"
    assert simulation.replay(policy, [third], rejected_after)[0].verdict.outcome == "escalate"


def test_same_instant_counts_by_id_and_never_the_action_itself():
    a, b = past(10, at=T0, amount=600), past(11, at=T0, amount=600)
    history = History([row_of(a), row_of(b)])
    outcomes = [
        r.verdict.outcome for r in simulation.replay(draft(VELOCITY_ESCALATE, APPROVE_CONFIDENT), [a, b], history)
    ]
    assert outcomes == ["approve", "escalate"]


def test_an_evaluation_error_escalates_and_is_counted(monkeypatch):
    def broken(self, *, at, action_id):
        def velocity(window, facts):
            raise RuntimeError("boom")

        return velocity

    monkeypatch.setattr(History, "velocity_at", broken)
    report = simulation.simulate(draft(VELOCITY_ESCALATE, APPROVE_CONFIDENT), [past(1, at=T0)], History([]))
    assert report["evaluation_errors"] == 1
    assert report["draft"] == {"approve": 0, "reject": 0, "escalate": 1}


def test_history_span_and_keys():
    actions = [past(1, at=T0, user="a"), past(2, at=T0 + 50, user="", version="v9")]
    by_user = VelocityWindow(of="count", path=None, by="end_user_id", seconds=3600, action=None)
    by_version = VelocityWindow(of="count", path=None, by="agent_version", seconds=60, action=None)
    whole = VelocityWindow(of="count", path=None, by="project", seconds=10, action=None)
    assert simulation.history_span(actions, [by_user, by_version]) == (T0 - 3600, T0 + 50)
    assert simulation.history_span(actions, []) is None
    # An action without an end user needs no rows (its total is unbounded by definition).
    assert simulation.window_keys(actions, [by_user, by_version]) == {
        "end_user_id": {"a"},
        "agent_version": {"v1", "v9"},
    }
    assert simulation.window_keys(actions, [by_user, whole]) is None


# --- History against a brute force ---------------------------------------------------------------

rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 50),  # created offset
        st.sampled_from(["refund", "refund_partial", "delete"]),
        st.sampled_from(["u1", "u2", ""]),
        st.sampled_from(["v1", "v2"]),
        st.sampled_from(["approved", "pending", "rejected", "expired"]),
        st.integers(0, 60),  # decision delay
        st.one_of(st.integers(-5, 500), st.floats(-5, 500), st.booleans(), st.text(max_size=2)),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=rows_strategy,
    at=st.integers(0, 60),
    seconds=st.integers(1, 40),
    of=st.sampled_from(["sum", "count"]),
    by=st.sampled_from(["end_user_id", "agent_version", "project"]),
    glob=st.sampled_from([None, "refund*", "*"]),
    me=st.tuples(st.sampled_from(["refund", "delete"]), st.sampled_from(["u1", "u2"]), st.sampled_from(["v1", "v2"])),
)
def test_history_totals_match_a_brute_force(rows, at, seconds, of, by, glob, me):
    history_rows = []
    for i, (offset, name, user, version, status, delay, amount) in enumerate(rows):
        created = T0 + offset
        decided = created + delay if status in ("rejected", "expired") else None
        history_rows.append(
            HistoryRow(
                id=i + 1,
                created_at=created,
                action=name,
                end_user_id=user,
                agent_version=version,
                counted_until=simulation.counted_until(status=status, decided_at=decided),
                args={"amount": amount},
            )
        )
    window = VelocityWindow(of=of, path="amount" if of == "sum" else None, by=by, seconds=seconds, action=glob)
    facts = ActionFacts(action=me[0], args={}, confidence=None, risk_tags=(), agent_version=me[2], end_user_id=me[1])
    now, my_id = T0 + at, 1000 if at % 2 else 15  # sometimes an id among the rows: ties by id

    expected = 0.0
    for r in history_rows:
        if not (now - seconds <= r.created_at and (r.created_at, r.id) < (now, my_id)):
            continue
        if r.counted_until <= now:
            continue
        if by != "project" and getattr(r, by) != getattr(facts, by):
            continue
        if not (fnmatchcase(r.action, glob) if glob is not None else r.action == facts.action):
            continue
        if of == "count":
            expected += 1
        else:
            value = r.args["amount"]
            expected += value if isinstance(value, int | float) and not isinstance(value, bool) else 0
    got = History(history_rows).velocity_at(at=now, action_id=my_id)(window, facts)
    assert math.isclose(got, expected, abs_tol=1e-6)
