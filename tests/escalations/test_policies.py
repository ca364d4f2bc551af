"""escalations/policies.py: the pure policy and ladder module. No database."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import pickle
from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalations import policies as p
from escalations.policies import ActionFacts, VelocityWindow


def facts(**kw: Any) -> ActionFacts:
    kw.setdefault("action", "refund")
    kw.setdefault("args", {})
    kw.setdefault("confidence", 0.95)
    kw.setdefault("risk_tags", ())
    kw.setdefault("agent_version", "v1")
    kw.setdefault("end_user_id", "cust-1")
    return ActionFacts(**kw)


def policy(*rules: dict, default_ladder: str = "default") -> p.Policy:
    return p.policy_validate({"rules": list(rules), "default_ladder": default_ladder})


def no_velocity(window: VelocityWindow, f: ActionFacts) -> float:
    raise AssertionError("the velocity callback must not be called")


def decide(rule_if: dict, f: ActionFacts, velocity=no_velocity) -> bool:
    """Whether a single approve rule with this `if` matches (approve) or not (default escalate)."""
    verdict = p.policy_evaluate(policy({"if": rule_if, "then": "approve"}), f, velocity)
    assert verdict.outcome in ("approve", "escalate")
    return verdict.outcome == "approve"


# --- Conditions ----------------------------------------------------------------------------


def test_empty_if_matches_everything():
    assert decide({}, facts())
    assert decide({}, facts(action="anything", confidence=None, end_user_id=""))
    assert p.policy_evaluate(policy({"then": "reject"}), facts(), no_velocity).outcome == "reject"


@pytest.mark.parametrize(
    ("glob", "action", "expected"),
    [
        ("refund*", "refund", True),
        ("refund*", "refund_partial", True),
        ("refund*", "Refund", False),  # case-sensitive
        ("refund*", "payout", False),
        ("refund", "refunds", False),
        ("re?und", "refund", True),
        ("[rp]ay*", "refund", False),
        ("[!r]*", "refund", False),
        ("[rp]*", "payout", True),
        ("*", "", True),
    ],
)
def test_action_glob(glob, action, expected):
    assert decide({"action": glob}, facts(action=action)) is expected


@pytest.mark.parametrize(
    ("glob", "version", "expected"),
    [("v2*", "v2.1", True), ("v2*", "v1.9", False), ("v2*", "", False), ("*", "", True), ("v1", "v1", True)],
)
def test_agent_version_glob(glob, version, expected):
    assert decide({"agent_version": glob}, facts(agent_version=version)) is expected


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.5, True), (0.8999, True), (0.9, False), (1.0, False), (None, True), (math.nan, True)],
)
def test_confidence_below_treats_missing_as_lowest(confidence, expected):
    assert decide({"confidence_below": 0.9}, facts(confidence=confidence)) is expected


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.5, True), (0.9, True), (0.4999, False), (0.0, False), (None, False), (math.nan, False)],
)
def test_confidence_at_least_never_matches_missing(confidence, expected):
    assert decide({"confidence_at_least": 0.5}, facts(confidence=confidence)) is expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [(("pii",), True), (("x", "money"), True), (("x",), False), ((), False), (("PII",), False)],
)
def test_risk_tags_any(tags, expected):
    assert decide({"risk_tags_any": ["pii", "money"]}, facts(risk_tags=tags)) is expected


def test_conditions_are_anded():
    rule_if = {
        "action": "refund*",
        "confidence_at_least": 0.9,
        "risk_tags_any": ["small"],
        "agent_version": "v1",
        "args": [{"path": "amount", "op": "<", "value": 50}],
    }
    good = facts(confidence=0.95, risk_tags=("small",), args={"amount": 20})
    assert decide(rule_if, good)
    for change in (
        {"action": "payout"},
        {"confidence": 0.8},
        {"risk_tags": ()},
        {"agent_version": "v2"},
        {"args": {"amount": 50}},
    ):
        assert not decide(rule_if, dataclasses.replace(good, **change)), change


# --- Operators -------------------------------------------------------------------------------

ARGS = {
    "amount": 450,
    "price": 12.5,
    "currency": "USD",
    "note": "please refund my order",
    "vip": True,
    "zero": 0,
    "nothing": None,
    "tags": ["gift", 3, True],
    "customer": {"id": "c-7", "country": "FR"},
    "items": [{"price": 10}, {"price": 250}],
}


@pytest.mark.parametrize(
    ("path", "op", "value", "expected"),
    [
        # == and !=: equal within one JSON type; another type or a missing path never matches
        ("amount", "==", 450, True),
        ("amount", "==", 450.0, True),
        ("amount", "==", 451, False),
        ("amount", "==", "450", False),
        ("currency", "==", "USD", True),
        ("currency", "==", "usd", False),
        ("vip", "==", True, True),
        ("vip", "==", 1, False),  # a boolean is not a number
        ("zero", "==", False, False),
        ("amount", "!=", 451, True),
        ("amount", "!=", 450, False),
        ("amount", "!=", "x", False),  # type mismatch: no match, even for !=
        ("missing", "!=", 1, False),  # missing path: no match, even for !=
        ("nothing", "!=", "x", False),
        ("customer", "==", "c-7", False),
        # ordering: numbers with numbers, text with text
        ("amount", ">", 200, True),
        ("amount", ">", 450, False),
        ("amount", ">=", 450, True),
        ("amount", ">=", 451, False),
        ("amount", "<", 451, True),
        ("amount", "<", 450, False),
        ("amount", "<=", 450, True),
        ("amount", "<=", 449.99, False),
        ("price", ">", 12, True),
        ("currency", ">", "EUR", True),
        ("currency", "<", "EUR", False),
        ("currency", ">", 5, False),  # text vs number
        ("amount", ">", "1", False),  # number vs text
        ("vip", ">", 0, False),  # a boolean is not a number
        ("vip", "<=", 1, False),
        ("nothing", "<", 1, False),
        ("tags", ">", 1, False),
        ("missing", ">", 1, False),
        ("missing", "<", 1, False),
        # in: the arg is one of the list
        ("currency", "in", ["EUR", "USD"], True),
        ("currency", "in", ["EUR", "GBP"], False),
        ("amount", "in", [1, 450.0], True),
        ("amount", "in", ["450"], False),
        ("vip", "in", [1], False),  # True is not 1
        ("vip", "in", [True], True),
        ("zero", "in", [False], False),
        ("tags", "in", ["gift"], False),  # a list is not a member
        ("missing", "in", ["x"], False),
        # contains: text in text, or a value in a list
        ("note", "contains", "refund", True),
        ("note", "contains", "Refund", False),
        ("note", "contains", 5, False),
        ("tags", "contains", "gift", True),
        ("tags", "contains", 3, True),
        ("tags", "contains", True, True),
        ("tags", "contains", 1, False),  # True in the list is not 1
        ("tags", "contains", "gi", False),
        ("amount", "contains", 4, False),
        ("customer", "contains", "id", False),
        ("missing", "contains", "x", False),
        # paths: objects by key, lists by index
        ("customer.id", "==", "c-7", True),
        ("customer.country", "in", ["FR", "DE"], True),
        ("customer.missing", "==", "x", False),
        ("items.1.price", ">", 200, True),
        ("items.0.price", ">", 200, False),
        ("items.2.price", ">", 0, False),
        ("items.x.price", ">", 0, False),
        ("amount.deeper", "==", 1, False),
        ("tags.0", "==", "gift", True),
    ],
)
def test_arg_operators(path, op, value, expected):
    assert decide({"args": [{"path": path, "op": op, "value": value}]}, facts(args=ARGS)) is expected


def test_contains_results_shared_between_rules_stay_per_value_and_path():
    pol = policy(
        {"if": {"args": [{"path": "tags", "op": "contains", "value": "vip"}]}, "then": "reject"},
        {"if": {"args": [{"path": "tags", "op": "contains", "value": 1}]}, "then": "reject"},
        {"if": {"args": [{"path": "other", "op": "contains", "value": "gift"}]}, "then": "reject"},
        {"if": {"args": [{"path": "tags", "op": "contains", "value": 3.0}]}, "then": "approve", "name": "three"},
    )
    verdict = p.policy_evaluate(pol, facts(args={"tags": ["gift", 3, True, {"a": 1}], "other": "a gif"}), no_velocity)
    assert (verdict.outcome, verdict.rule_name) == ("approve", "three")
    text = p.policy_evaluate(
        policy(
            {"if": {"args": [{"path": "t", "op": "contains", "value": "zz"}]}, "then": "reject"},
            {"if": {"args": [{"path": "t", "op": "contains", "value": "ab"}]}, "then": "approve"},
        ),
        facts(args={"t": "xxab"}),
        no_velocity,
    )
    assert (text.outcome, text.rule_index) == ("approve", 1)


def test_arg_lookup():
    assert p.arg_lookup(ARGS, "amount") == (True, 450)
    assert p.arg_lookup(ARGS, "customer.id") == (True, "c-7")
    assert p.arg_lookup(ARGS, "items.1.price") == (True, 250)
    assert p.arg_lookup(ARGS, "nothing") == (True, None)
    assert p.arg_lookup(ARGS, "items.-1.price") == (False, None)
    assert p.arg_lookup(ARGS, "items.²") == (False, None)
    assert p.arg_lookup(ARGS, "absent") == (False, None)
    assert p.arg_lookup({"0": "key"}, "0") == (True, "key")


def test_all_arg_conditions_must_hold():
    rule_if = {"args": [{"path": "amount", "op": ">", "value": 100}, {"path": "currency", "op": "==", "value": "EUR"}]}
    assert not decide(rule_if, facts(args=ARGS))
    assert decide(rule_if, facts(args={**ARGS, "currency": "EUR"}))


# --- Order, outcomes, the fail-safe default --------------------------------------------------


def test_first_matching_rule_decides():
    pol = policy(
        {
            "name": "big refunds",
            "if": {"args": [{"path": "amount", "op": ">", "value": 200}]},
            "then": "escalate",
            "ladder": "finance",
        },
        {"name": "refunds", "if": {"action": "refund"}, "then": "approve", "reason": "small refunds are fine"},
        {"if": {}, "then": "reject"},
    )
    big = p.policy_evaluate(pol, facts(args={"amount": 450}), no_velocity)
    assert (big.outcome, big.ladder, big.rule_index, big.rule_name) == ("escalate", "finance", 0, "big refunds")
    assert big.reason == "Matched big refunds: escalate"
    small = p.policy_evaluate(pol, facts(args={"amount": 20}), no_velocity)
    assert (small.outcome, small.ladder, small.rule_index, small.rule_name, small.reason) == (
        "approve",
        None,
        1,
        "refunds",
        "small refunds are fine",
    )
    other = p.policy_evaluate(pol, facts(action="payout"), no_velocity)
    assert (other.outcome, other.rule_index, other.rule_name) == ("reject", 2, "rules[2]")


def test_escalate_without_a_ladder_uses_the_default():
    pol = policy({"then": "escalate"}, default_ladder="leads")
    verdict = p.policy_evaluate(pol, facts(), no_velocity)
    assert (verdict.outcome, verdict.ladder, verdict.rule_index) == ("escalate", "leads", 0)


@pytest.mark.parametrize("rules", [[], [{"if": {"action": "payout"}, "then": "approve"}]])
def test_no_rule_matched_escalates_to_the_default_ladder(rules):
    verdict = p.policy_evaluate(policy(*rules, default_ladder="triage"), facts(), no_velocity)
    assert verdict == p.Verdict(
        outcome="escalate",
        ladder="triage",
        rule_index=None,
        rule_name="",
        reason="No rule matched; escalated to the default ladder",
        explanation=(),
    )


def test_explanation_lists_each_condition_with_what_was_observed():
    pol = policy(
        {
            "if": {
                "action": "refund*",
                "confidence_below": 0.9,
                "confidence_at_least": 0.1,
                "risk_tags_any": ["pii"],
                "agent_version": "v*",
                "args": [{"path": "amount", "op": ">", "value": 200}, {"path": "cur", "op": "in", "value": ["USD"]}],
                "velocity": [
                    {"window": {"of": "count", "by": "project", "seconds": 3600}, "op": ">=", "value": 1},
                ],
            },
            "then": "escalate",
        }
    )
    f = facts(args={"amount": 450, "cur": "USD"}, confidence=0.5, risk_tags=("pii", "x"), agent_version="v3")
    verdict = p.policy_evaluate(pol, f, lambda w, a: 4)
    assert verdict.explanation == (
        {"condition": 'action matches "refund*"', "observed": "refund"},
        {"condition": "confidence < 0.9", "observed": 0.5},
        {"condition": "confidence >= 0.1", "observed": 0.5},
        {"condition": 'risk_tags any of ["pii"]', "observed": ["pii", "x"]},
        {"condition": 'agent_version matches "v*"', "observed": "v3"},
        {"condition": "args.amount > 200", "observed": 450},
        {"condition": 'args.cur in ["USD"]', "observed": "USD"},
        {"condition": "count by project over 3600 s >= 1", "observed": 5},
    )


def test_explanation_notes_a_missing_confidence_and_cuts_big_values():
    pol = policy(
        {
            "if": {"confidence_below": 0.5, "args": [{"path": "note", "op": "contains", "value": "a"}]},
            "then": "escalate",
        }
    )
    verdict = p.policy_evaluate(pol, facts(confidence=None, args={"note": "a" * 5000}), no_velocity)
    first, second = verdict.explanation
    assert first == {
        "condition": "confidence < 0.5",
        "observed": None,
        "note": "no confidence given: counted as the lowest",
    }
    assert second["observed"] == "a" * 500 + "…"
    big_list = p.policy_evaluate(
        policy({"if": {"args": [{"path": "l", "op": "contains", "value": 1}]}, "then": "reject"}),
        facts(args={"l": list(range(1000))}),
        no_velocity,
    )
    assert big_list.explanation[0]["observed"] == "(list of 1000 items)"


# --- Velocity ---------------------------------------------------------------------------------

THIRD_REFUND = {
    "name": "refund velocity",
    "if": {
        "action": "refund",
        "velocity": [
            {"window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400}, "op": ">", "value": 1000}
        ],
    },
    "then": "escalate",
    "ladder": "finance",
}
APPROVE_REFUNDS = {
    "if": {"action": "refund", "args": [{"path": "amount", "op": "<=", "value": 500}]},
    "then": "approve",
}


class Recorder:
    """A velocity callback over a list of earlier actions, recording its calls."""

    def __init__(self, earlier: list[ActionFacts]):
        self.earlier = earlier
        self.calls: list[VelocityWindow] = []

    def __call__(self, window: VelocityWindow, f: ActionFacts) -> float:
        self.calls.append(window)
        rows = [
            e
            for e in self.earlier
            if (e.action == f.action if window.action is None else fnmatchcase(e.action, window.action))
            and (window.by == "project" or getattr(e, window.by) == getattr(f, window.by))
        ]
        if window.of == "count":
            return len(rows)
        return sum(v for e in rows if (v := p.arg_lookup(e.args, window.path)[1]) is not None)


def test_a_third_400_refund_to_one_customer_in_a_day_goes_to_a_human():
    pol = policy(THIRD_REFUND, APPROVE_REFUNDS)
    history: list[ActionFacts] = []
    outcomes = []
    for _ in range(3):
        f = facts(args={"amount": 400})
        velocity = Recorder(list(history))
        verdict = p.policy_evaluate(pol, f, velocity)
        outcomes.append((verdict.outcome, verdict.rule_index))
        assert len(velocity.calls) == 1
        history.append(f)
    # 400, then 800: approved; 1,200 with this one included: escalated to finance
    assert outcomes == [("approve", 1), ("approve", 1), ("escalate", 0)]
    verdict = p.policy_evaluate(pol, facts(args={"amount": 400}), Recorder(history[:2]))
    assert verdict.ladder == "finance"
    assert verdict.explanation[-1] == {
        "condition": "sum of args.amount by end_user_id over 86400 s > 1000",
        "observed": 1200,
    }
    # another customer's refunds do not count
    assert p.policy_evaluate(pol, facts(args={"amount": 400}, end_user_id="cust-2"), Recorder(history)).outcome == (
        "approve"
    )


def test_sum_adds_zero_for_a_missing_or_non_numeric_own_value():
    rule = copy.deepcopy(THIRD_REFUND)
    rule["if"]["velocity"][0]["op"] = ">="
    pol = policy(rule, {"then": "approve"})
    for args in ({}, {"amount": "400"}, {"amount": True}, {"amount": [400]}):
        assert p.policy_evaluate(pol, facts(args=args), lambda w, f: 999).outcome == "approve", args
        assert p.policy_evaluate(pol, facts(args=args), lambda w, f: 1000).outcome == "escalate", args
    assert p.policy_evaluate(pol, facts(args={"amount": 1}), lambda w, f: 999).outcome == "escalate"


def test_sum_of_an_own_integer_past_a_floats_range_is_off_the_scale():
    # Args keep integers exact, and float(10**400) raises: that made the whole policy
    # unevaluable (escalated "could not be evaluated"), so a reject rule below did not reject.
    sums = {"window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 60}}
    pol = policy(
        {"name": "big", "if": {"velocity": [{**sums, "op": ">", "value": 1000}]}, "then": "escalate"},
        {"name": "tiny", "if": {"velocity": [{**sums, "op": "<", "value": -1000}]}, "then": "reject"},
        {"then": "approve"},
    )

    huge = p.policy_evaluate(pol, facts(args={"amount": 10**400}), lambda w, f: 0.0)
    negative = p.policy_evaluate(pol, facts(args={"amount": -(10**400)}), lambda w, f: 0.0)
    # An earlier total off the scale one way and this one the other: unknown, so risky.
    both = p.policy_evaluate(pol, facts(args={"amount": -(10**400)}), lambda w, f: math.inf)

    assert (huge.outcome, huge.rule_name) == ("escalate", "big")
    assert huge.explanation == (
        {
            "condition": "sum of args.amount by end_user_id over 60 s > 1000",
            "observed": None,
            "note": "the total is past a float's range: counted as unbounded",
        },
    )
    assert (negative.outcome, negative.rule_name) == ("reject", "tiny")
    assert (both.outcome, both.rule_name) == ("escalate", "big")


def test_count_includes_the_action_being_evaluated():
    pol = policy(
        {
            "if": {
                "velocity": [{"window": {"of": "count", "by": "agent_version", "seconds": 60}, "op": ">", "value": 2}]
            },
            "then": "reject",
        }
    )
    assert p.policy_evaluate(pol, facts(), lambda w, f: 1).outcome == "escalate"  # 1 earlier + this = 2
    verdict = p.policy_evaluate(pol, facts(), lambda w, f: 2)
    assert verdict.outcome == "reject"
    assert verdict.explanation == ({"condition": "count by agent_version over 60 s > 2", "observed": 3},)


def test_window_action_glob_decides_whether_this_action_counts():
    def rule(action_glob):
        window = {"of": "count", "by": "end_user_id", "seconds": 600}
        if action_glob is not None:
            window["action"] = action_glob
        return {"if": {"velocity": [{"window": window, "op": ">=", "value": 3}]}, "then": "escalate", "ladder": "x"}

    earlier = [facts(action="refund"), facts(action="refund_partial"), facts(action="payout")]
    # no glob: only actions named like this one (refund); this one counts: 1 + 1
    assert p.policy_evaluate(policy(rule(None), {"then": "approve"}), facts(), Recorder(earlier)).outcome == "approve"
    # refund*: two earlier + this one
    assert p.policy_evaluate(policy(rule("refund*")), facts(), Recorder(earlier)).ladder == "x"
    # payout: one earlier; this refund is not counted
    verdict = p.policy_evaluate(policy(rule("pay*"), {"then": "approve"}), facts(), Recorder(earlier * 2))
    assert verdict.outcome == "approve"
    verdict = p.policy_evaluate(policy(rule("pay*")), facts(), Recorder(earlier * 3))
    assert verdict.explanation == (
        {"condition": 'count of actions matching "pay*" by end_user_id over 600 s >= 3', "observed": 3},
    )


def test_velocity_is_not_queried_when_an_earlier_condition_fails():
    rule = copy.deepcopy(THIRD_REFUND)
    rule["if"]["args"] = [{"path": "amount", "op": ">", "value": 100}]
    rule["if"]["confidence_below"] = 0.99
    pol = policy(rule)
    for f in (
        facts(action="payout", args={"amount": 400}),
        facts(args={"amount": 50}),
        facts(args={}),
        facts(args={"amount": 400}, confidence=0.995),
    ):
        assert p.policy_evaluate(pol, f, no_velocity).rule_index is None


def test_velocity_stops_at_the_first_failing_window_and_queries_each_window_once():
    w_sum = {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400}
    w_count = {"of": "count", "by": "project", "seconds": 60}
    pol = policy(
        {
            "if": {
                "velocity": [{"window": w_sum, "op": ">", "value": 10_000}, {"window": w_count, "op": ">", "value": 0}]
            },
            "then": "reject",
        },
        {"if": {"velocity": [{"window": w_sum, "op": ">", "value": 100}]}, "then": "escalate"},
    )
    calls: list[VelocityWindow] = []

    def velocity(window, f):
        calls.append(window)
        return 500

    verdict = p.policy_evaluate(pol, facts(args={"amount": 1}), velocity)
    assert (verdict.outcome, verdict.rule_index) == ("escalate", 1)
    assert calls == [VelocityWindow(of="sum", path="amount", by="end_user_id", seconds=86400, action=None)]
    assert p.velocity_windows(pol) == (
        VelocityWindow(of="sum", path="amount", by="end_user_id", seconds=86400, action=None),
        VelocityWindow(of="count", path=None, by="project", seconds=60, action=None),
    )


@pytest.mark.parametrize(
    ("op", "matches"), [(">", True), (">=", True), ("!=", True), ("<", False), ("<=", False), ("==", False)]
)
def test_no_end_user_id_counts_as_an_unbounded_total(op, matches):
    window = {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400}
    pol = policy({"if": {"velocity": [{"window": window, "op": op, "value": 1000}]}, "then": "reject"})
    verdict = p.policy_evaluate(pol, facts(end_user_id="", args={"amount": 1}), no_velocity)
    assert verdict.outcome == ("reject" if matches else "escalate")
    if matches:
        assert verdict.explanation[0]["observed"] is None
        assert "no end_user_id" in verdict.explanation[0]["note"]


@pytest.mark.parametrize("by", ["project", "agent_version"])
def test_no_end_user_id_still_queries_project_and_agent_version_windows(by):
    pol = policy(
        {
            "if": {"velocity": [{"window": {"of": "count", "by": by, "seconds": 60}, "op": "<", "value": 5}]},
            "then": "approve",
        }
    )
    calls = []
    verdict = p.policy_evaluate(pol, facts(end_user_id=""), lambda w, f: calls.append(w) or 3)
    assert (verdict.outcome, len(calls)) == ("approve", 1)


def test_velocity_callback_errors_propagate():
    def broken(window, f):
        raise ConnectionError("database gone")

    with pytest.raises(ConnectionError):
        p.policy_evaluate(policy(THIRD_REFUND), facts(), broken)


# --- Validation --------------------------------------------------------------------------------

BASE_RULE = {
    "name": "r",
    "if": {
        "action": "refund*",
        "confidence_below": 0.9,
        "confidence_at_least": 0.5,
        "risk_tags_any": ["pii"],
        "agent_version": "v2*",
        "args": [{"path": "amount", "op": ">", "value": 200}],
        "velocity": [
            {"window": {"of": "sum", "path": "amount", "by": "end_user_id", "seconds": 86400}, "op": ">", "value": 1000}
        ],
    },
    "then": "escalate",
    "ladder": "finance",
    "reason": "big",
}


def with_change(path: list, value: Any, *, rule_index: int = 1) -> dict:
    """A valid two-rule policy with one value at `path` (inside rules[rule_index]) replaced;
    a value of `DELETE` removes the key."""
    data = {"rules": [copy.deepcopy(BASE_RULE), copy.deepcopy(BASE_RULE)], "default_ladder": "default"}
    node: Any = data["rules"][rule_index]
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


DELETE = object()
LONG = "x" * 201


def test_the_base_rule_is_valid():
    pol = p.policy_validate(with_change(["name"], "r"))
    assert pol.rules[1] == p.Rule(
        index=1,
        name="r",
        action="refund*",
        confidence_below=0.9,
        confidence_at_least=0.5,
        risk_tags_any=("pii",),
        agent_version="v2*",
        args=(p.ArgCondition(path="amount", op=">", value=200),),
        velocity=(
            p.VelocityCondition(
                window=VelocityWindow(of="sum", path="amount", by="end_user_id", seconds=86400, action=None),
                op=">",
                value=1000,
            ),
        ),
        outcome="escalate",
        ladder="finance",
        reason="big",
    )


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["then"], DELETE, "rules[1].then"),
        (["then"], "allow", "rules[1].then"),
        (["then"], None, "rules[1].then"),
        (["name"], "n" * 101, "rules[1].name"),
        (["name"], "", "rules[1].name"),
        (["name"], "a\x00b", "rules[1].name"),
        (["name"], "\ud800", "rules[1].name"),
        (["name"], 5, "rules[1].name"),
        (["reason"], "r" * 501, "rules[1].reason"),
        (["ladder"], "bad name", "rules[1].ladder"),
        (["ladder"], "l" * 101, "rules[1].ladder"),
        (["when"], 1, "rules[1].when"),
        (["if"], [], "rules[1].if"),
        (["if", "unless"], 1, "rules[1].if.unless"),
        (["if", "action"], LONG, "rules[1].if.action"),
        (["if", "action"], "", "rules[1].if.action"),
        (["if", "action"], 3, "rules[1].if.action"),
        (["if", "agent_version"], LONG, "rules[1].if.agent_version"),
        (["if", "confidence_below"], 1.5, "rules[1].if.confidence_below"),
        (["if", "confidence_below"], -0.1, "rules[1].if.confidence_below"),
        (["if", "confidence_below"], "0.5", "rules[1].if.confidence_below"),
        (["if", "confidence_below"], True, "rules[1].if.confidence_below"),
        (["if", "confidence_below"], math.nan, "rules[1].if.confidence_below"),
        (["if", "confidence_at_least"], math.inf, "rules[1].if.confidence_at_least"),
        (["if", "confidence_at_least"], 0.9, "rules[1].if.confidence_at_least"),  # not below confidence_below
        (["if", "risk_tags_any"], [], "rules[1].if.risk_tags_any"),
        (["if", "risk_tags_any"], "pii", "rules[1].if.risk_tags_any"),
        (["if", "risk_tags_any"], ["t"] * 51, "rules[1].if.risk_tags_any"),
        (["if", "risk_tags_any"], ["ok", "t" * 101], "rules[1].if.risk_tags_any[1]"),
        (["if", "risk_tags_any"], ["ok", 1], "rules[1].if.risk_tags_any[1]"),
        (["if", "args"], {}, "rules[1].if.args"),
        (["if", "args"], [{"path": "a", "op": "==", "value": 1}] * 21, "rules[1].if.args"),
        (["if", "args", 0, "op"], "=~", "rules[1].if.args[0].op"),
        (["if", "args", 0, "op"], DELETE, "rules[1].if.args[0].op"),
        (["if", "args", 0, "path"], DELETE, "rules[1].if.args[0].path"),
        (["if", "args", 0, "value"], DELETE, "rules[1].if.args[0].value"),
        (["if", "args", 0, "extra"], 1, "rules[1].if.args[0].extra"),
        (["if", "args", 0, "path"], "p" * 201, "rules[1].if.args[0].path"),
        (["if", "args", 0, "path"], ".".join(["a"] * 17), "rules[1].if.args[0].path"),
        (["if", "args", 0, "path"], "a..b", "rules[1].if.args[0].path"),
        (["if", "args", 0, "path"], "a.", "rules[1].if.args[0].path"),
        (["if", "args", 0, "path"], "", "rules[1].if.args[0].path"),
        (["if", "args", 0, "path"], "a\x00", "rules[1].if.args[0].path"),
        (["if", "args", 0, "value"], math.nan, "rules[1].if.args[0].value"),
        (["if", "args", 0, "value"], -math.inf, "rules[1].if.args[0].value"),
        (["if", "args", 0, "value"], True, "rules[1].if.args[0].value"),  # ordering needs number or text
        (["if", "args", 0, "value"], None, "rules[1].if.args[0].value"),
        (["if", "args", 0, "value"], [1], "rules[1].if.args[0].value"),
        (["if", "args", 0, "value"], {"a": 1}, "rules[1].if.args[0].value"),
        (["if", "args", 0, "value"], 2**63, "rules[1].if.args[0].value"),
        (["if", "args", 0, "value"], "v" * 1001, "rules[1].if.args[0].value"),
        (["if", "args", 0, "value"], "nul\x00", "rules[1].if.args[0].value"),
        (["if", "velocity"], [BASE_RULE["if"]["velocity"][0]] * 6, "rules[1].if.velocity"),
        (["if", "velocity", 0, "op"], "in", "rules[1].if.velocity[0].op"),
        (["if", "velocity", 0, "value"], "1000", "rules[1].if.velocity[0].value"),
        (["if", "velocity", 0, "value"], math.inf, "rules[1].if.velocity[0].value"),
        (["if", "velocity", 0, "window"], DELETE, "rules[1].if.velocity[0].window"),
        (["if", "velocity", 0, "size"], 1, "rules[1].if.velocity[0].size"),
        (["if", "velocity", 0, "window", "of"], "avg", "rules[1].if.velocity[0].window.of"),
        (["if", "velocity", 0, "window", "of"], DELETE, "rules[1].if.velocity[0].window.of"),
        (["if", "velocity", 0, "window", "path"], DELETE, "rules[1].if.velocity[0].window.path"),
        (["if", "velocity", 0, "window", "path"], "a..b", "rules[1].if.velocity[0].window.path"),
        (["if", "velocity", 0, "window", "by"], "ip", "rules[1].if.velocity[0].window.by"),
        (["if", "velocity", 0, "window", "seconds"], 0, "rules[1].if.velocity[0].window.seconds"),
        (["if", "velocity", 0, "window", "seconds"], 90 * 86400 + 1, "rules[1].if.velocity[0].window.seconds"),
        (["if", "velocity", 0, "window", "seconds"], 60.0, "rules[1].if.velocity[0].window.seconds"),
        (["if", "velocity", 0, "window", "seconds"], True, "rules[1].if.velocity[0].window.seconds"),
        (["if", "velocity", 0, "window", "action"], LONG, "rules[1].if.velocity[0].window.action"),
        (["if", "velocity", 0, "window", "extra"], 1, "rules[1].if.velocity[0].window.extra"),
    ],
)
def test_validation_names_the_exact_field(path, value, field):
    with pytest.raises(p.PolicyInvalid) as exc:
        p.policy_validate(with_change(path, value))
    assert exc.value.field == field
    assert exc.value.message
    assert str(exc.value) == f"{field}: {exc.value.message}"


@pytest.mark.parametrize(
    ("op", "value", "field"),
    [
        ("in", "USD", "rules[1].if.args[0].value"),
        ("in", [], "rules[1].if.args[0].value"),
        ("in", list(range(201)), "rules[1].if.args[0].value"),
        ("in", ["a", None], "rules[1].if.args[0].value[1]"),
        ("in", ["a", ["b"]], "rules[1].if.args[0].value[1]"),
        ("in", ["a", math.nan], "rules[1].if.args[0].value[1]"),
        ("contains", ["a"], "rules[1].if.args[0].value"),
        ("contains", None, "rules[1].if.args[0].value"),
        ("==", None, "rules[1].if.args[0].value"),
        ("!=", {"a": 1}, "rules[1].if.args[0].value"),
        ("<", False, "rules[1].if.args[0].value"),
        (">=", ["1"], "rules[1].if.args[0].value"),
    ],
)
def test_each_op_checks_its_value_type(op, value, field):
    data = with_change(["if", "args", 0], {"path": "amount", "op": op, "value": value})
    with pytest.raises(p.PolicyInvalid) as exc:
        p.policy_validate(data)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("in", ["a", 1, 2.5, True]),
        ("contains", "a"),
        ("contains", 3),
        ("contains", False),
        ("==", True),
        ("!=", ""),
        (">", "M"),
        ("<=", -2.5),
    ],
)
def test_each_op_accepts_its_value_types(op, value):
    data = with_change(["if", "args", 0], {"path": "amount", "op": op, "value": value})
    cond = p.policy_validate(data).rules[1].args[0]
    assert (cond.op, cond.value) == (op, tuple(value) if op == "in" else value)


def test_count_windows_have_no_path():
    data = with_change(
        ["if", "velocity", 0, "window"], {"of": "count", "path": "amount", "by": "project", "seconds": 60}
    )
    with pytest.raises(p.PolicyInvalid) as exc:
        p.policy_validate(data)
    assert exc.value.field == "rules[1].if.velocity[0].window.path"
    data["rules"][1]["if"]["velocity"][0]["window"].pop("path")
    assert p.policy_validate(data).rules[1].velocity[0].window.path is None


def test_ladder_only_on_escalate_rules():
    data = with_change(["then"], "approve")
    with pytest.raises(p.PolicyInvalid) as exc:
        p.policy_validate(data)
    assert exc.value.field == "rules[1].ladder"
    data["rules"][1]["ladder"] = None
    assert p.policy_validate(data).rules[1].ladder is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "body"),
        ({}, "rules"),
        ({"rules": {}}, "rules"),
        ({"rules": [{"then": "approve"}] * 201}, "rules"),
        ({"rules": [], "default_ladder": ""}, "default_ladder"),
        ({"rules": [], "default_ladder": "-x"}, "default_ladder"),
        ({"rules": [], "default_ladder": "a/b"}, "default_ladder"),
        ({"rules": [], "version": 3}, "version"),
        ({"rules": [], "x\x00": 3}, "body"),
        ({"rules": ["approve"]}, "rules[0]"),
        ({"rules": [{"then": "approve"}, None]}, "rules[1]"),
    ],
)
def test_policy_level_errors(data, field):
    with pytest.raises(p.PolicyInvalid) as exc:
        p.policy_validate(data)
    assert exc.value.field == field


def test_unknown_keys_are_named_in_the_message():
    with pytest.raises(p.PolicyInvalid) as exc:
        p.policy_validate(with_change(["if", "amount_over"], 5))
    assert exc.value.field == "rules[1].if.amount_over"
    assert "'amount_over'" in exc.value.message and "allowed: action" in exc.value.message


def test_bounds_at_the_limit_are_accepted():
    rule = {
        "name": "n" * 100,
        "if": {
            "action": "a" * 200,
            "risk_tags_any": ["t" * 100] * 50,
            "args": [{"path": ".".join(["p"] * 16), "op": "in", "value": ["v" * 1000] * 200}] * 20,
            "velocity": [
                {
                    "window": {"of": "count", "by": "project", "seconds": 90 * 86400, "action": "*"},
                    "op": "<",
                    "value": 5,
                }
            ]
            * 5,
        },
        "then": "escalate",
        "ladder": "l" * 100,
        "reason": "r" * 500,
    }
    pol = p.policy_validate({"rules": [rule] * 200, "default_ladder": "d" * 100})
    assert len(pol.rules) == 200
    assert p.policy_validate(p.policy_to_json(pol)) == pol


def test_policy_errors_are_value_errors_and_ladder_errors_are_policy_errors():
    assert issubclass(p.PolicyInvalid, ValueError)
    assert issubclass(p.LadderInvalid, p.PolicyInvalid)


# --- JSON round trip ---------------------------------------------------------------------------


def test_to_json_is_normalised_and_round_trips():
    data = {
        "rules": [
            BASE_RULE,
            {"if": {"args": [{"path": "c", "op": "in", "value": ["a", 1]}]}, "then": "reject", "ladder": None},
            {"name": None, "then": "escalate", "reason": None},
        ]
    }
    pol = p.policy_validate(data)
    stored = p.policy_to_json(pol)
    assert stored == {
        "rules": [
            BASE_RULE,
            {"if": {"args": [{"path": "c", "op": "in", "value": ["a", 1]}]}, "then": "reject"},
            {"if": {}, "then": "escalate"},
        ],
        "default_ladder": "default",
    }
    assert p.policy_from_json(stored) == pol
    assert p.policy_validate(stored) == pol
    # the stored form is JSON as it is
    assert p.policy_from_json(json.loads(p.canonical_json(stored))) == pol


def test_default_names_follow_the_rule_position():
    pol = p.policy_validate({"rules": [{"then": "approve"}, {"name": "kept", "then": "reject"}]})
    assert [r.name for r in pol.rules] == ["rules[0]", "kept"]
    stored = p.policy_to_json(pol)
    stored["rules"].insert(0, {"if": {}, "then": "escalate"})
    assert [r.name for r in p.policy_from_json(stored).rules] == ["rules[0]", "rules[1]", "kept"]


def test_a_policy_survives_pickling_for_a_cache():
    pol = p.policy_validate({"rules": [BASE_RULE, {"if": {"args": ARG_MIX}, "then": "approve"}]})
    again = pickle.loads(pickle.dumps(pol))  # noqa: S301 - our own bytes
    assert again == pol
    f = facts(args={"a": "x", "l": [2], "n": 5})
    assert p.policy_evaluate(again, f, no_velocity) == p.policy_evaluate(pol, f, no_velocity)
    assert p.policy_evaluate(again, f, no_velocity).outcome == "approve"


ARG_MIX = [
    {"path": "a", "op": "in", "value": ["x", 1]},
    {"path": "l", "op": "contains", "value": 2},
    {"path": "n", "op": ">=", "value": 5},
]


def test_policy_and_rules_are_hashable():
    pol = p.policy_validate(
        {"rules": [BASE_RULE, {"if": {"args": [{"path": "a", "op": "in", "value": [1]}]}, "then": "approve"}]}
    )
    assert hash(pol) == hash(p.policy_from_json(p.policy_to_json(pol)))


# Text the JSON parser lets in: no NUL, no unpaired surrogates.
chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
scalars = st.one_of(
    st.text(chars, max_size=20),
    st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
json_values = st.recursive(
    st.none() | scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(chars, max_size=8), children, max_size=4),
    max_leaves=20,
)
arg_conditions = st.one_of(
    st.builds(
        lambda path, op, v: {"path": path, "op": op, "value": v},
        st.sampled_from(["a", "b.c", "l.0"]),
        st.sampled_from(["==", "!=", "contains"]),
        scalars,
    ),
    st.builds(
        lambda path, op, v: {"path": path, "op": op, "value": v},
        st.sampled_from(["a", "b.c"]),
        st.sampled_from([">", ">=", "<", "<="]),
        st.one_of(st.text(chars, max_size=5), st.integers(-1000, 1000), st.floats(-1e6, 1e6)),
    ),
    st.builds(
        lambda path, v: {"path": path, "op": "in", "value": v},
        st.sampled_from(["a", "b.c"]),
        st.lists(scalars, min_size=1, max_size=4),
    ),
)
windows = st.builds(
    lambda of, by, seconds, action: {
        "of": of,
        **({"path": "a"} if of == "sum" else {}),
        "by": by,
        "seconds": seconds,
        **({"action": action} if action else {}),
    },
    st.sampled_from(["sum", "count"]),
    st.sampled_from(["end_user_id", "agent_version", "project"]),
    st.integers(1, 90 * 86400),
    st.sampled_from([None, "refund*", "*"]),
)
rules_strategy = st.builds(
    lambda name, cond, then, ladder, reason: {
        **({"name": name} if name else {}),
        "if": cond,
        "then": then,
        **({"ladder": ladder} if ladder and then == "escalate" else {}),
        **({"reason": reason} if reason else {}),
    },
    st.one_of(st.none(), st.text(chars, min_size=1, max_size=10)),
    st.fixed_dictionaries(
        {},
        optional={
            "action": st.sampled_from(["refund*", "refund", "pay?ut", "*"]),
            "confidence_below": st.floats(0.5, 1),
            "confidence_at_least": st.floats(0, 0.49),
            "risk_tags_any": st.lists(st.sampled_from(["pii", "money", "vip"]), min_size=1, max_size=3),
            "agent_version": st.sampled_from(["v1", "v*"]),
            "args": st.lists(arg_conditions, max_size=3),
            "velocity": st.lists(
                st.builds(
                    lambda w, op, v: {"window": w, "op": op, "value": v},
                    windows,
                    st.sampled_from(p.VELOCITY_OPS),
                    st.integers(0, 2000),
                ),
                max_size=2,
            ),
        },
    ),
    st.sampled_from(p.OUTCOMES),
    st.one_of(st.none(), st.sampled_from(["finance", "leads"])),
    st.one_of(st.none(), st.text(chars, max_size=10)),
)
policies_strategy = st.builds(
    lambda rules: {"rules": rules, "default_ladder": "default"}, st.lists(rules_strategy, max_size=5)
)
facts_strategy = st.builds(
    ActionFacts,
    action=st.sampled_from(["refund", "payout", "refund_partial"]),
    args=st.dictionaries(st.sampled_from(["a", "b", "l"]), json_values, max_size=3),
    confidence=st.one_of(st.none(), st.floats(0, 1)),
    risk_tags=st.lists(st.sampled_from(["pii", "money", "x"]), max_size=2).map(tuple),
    agent_version=st.sampled_from(["", "v1", "v2"]),
    end_user_id=st.sampled_from(["", "c1"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=policies_strategy, f=facts_strategy, earlier=st.integers(0, 3000))
def test_generated_policies_round_trip_and_evaluate(data, f, earlier):
    pol = p.policy_validate(data)
    stored = p.policy_to_json(pol)
    assert p.policy_from_json(stored) == pol
    assert p.policy_validate(stored) == pol
    verdict = p.policy_evaluate(pol, f, lambda w, a: earlier)
    assert verdict.outcome in p.OUTCOMES
    assert (verdict.ladder is not None) == (verdict.outcome == "escalate")
    if verdict.rule_index is None:
        assert verdict.reason == p.NO_MATCH_REASON
    else:
        assert pol.rules[verdict.rule_index].outcome == verdict.outcome
        # no earlier rule matched: removing the deciding rule and everything after cannot match
        earlier_policy = p.Policy(rules=pol.rules[: verdict.rule_index], default_ladder="default")
        assert p.policy_evaluate(earlier_policy, f, lambda w, a: earlier).rule_index is None
    p.canonical_json(list(verdict.explanation))  # storable: finite numbers only


@settings(max_examples=200, deadline=None)
@given(data=json_values)
def test_arbitrary_json_is_refused_with_policy_invalid_or_accepted(data):
    for candidate in (data, {"rules": [data]}, {"rules": [{"if": data, "then": "approve"}]}):
        try:
            p.policy_validate(candidate)
        except p.PolicyInvalid as exc:
            assert exc.field and exc.message
        try:
            p.ladder_validate(candidate)
        except p.LadderInvalid as exc:
            assert exc.field and exc.message


# --- Digest ------------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8():
    assert p.canonical_json({"b": 1, "a": [1.5, "é", None, True]}) == '{"a":[1.5,"é",null,true],"b":1}'.encode()
    with pytest.raises(ValueError):
        p.canonical_json({"a": math.nan})


def test_args_digest_is_stable_under_key_order_and_unicode():
    one = p.args_digest("refund", {"amount": 400, "customer": {"name": "Zoë 東京", "id": "c-1"}})
    two = p.args_digest("refund", {"customer": {"id": "c-1", "name": "Zoë 東京"}, "amount": 400})
    assert one == two
    expected = hashlib.sha256(
        '{"action":"refund","args":{"amount":400,"customer":{"id":"c-1","name":"Zoë 東京"}}}'.encode()
    ).hexdigest()
    assert one == expected
    assert len(one) == 64
    assert p.args_digest("refund", {"amount": 401, "customer": {"id": "c-1", "name": "Zoë 東京"}}) != one
    assert p.args_digest("payout", {"amount": 400, "customer": {"id": "c-1", "name": "Zoë 東京"}}) != one
    # NFC and NFD spellings are different args: no normalisation behind the agent's back
    assert p.args_digest("refund", {"n": "é"}) != p.args_digest("refund", {"n": "e\u0301"})


@settings(max_examples=100, deadline=None)
@given(args=st.dictionaries(st.text(chars, max_size=8), json_values, max_size=6))
def test_args_digest_ignores_key_order(args):
    reordered = dict(reversed(list(args.items())))
    assert p.args_digest("a", args) == p.args_digest("a", reordered)


# --- Ladders -----------------------------------------------------------------------------------

LADDER = {
    "name": "finance",
    "tiers": [
        {"role": "approver", "timeout_seconds": 900},
        {"users": ["lead", "cfo@example.com"], "timeout_seconds": 3600, "approvals_required": 2},
    ],
    "timeout_outcome": "reject",
}


def test_ladder_validate_normalises():
    ladder = p.ladder_validate(LADDER)
    assert ladder == p.Ladder(
        name="finance",
        tiers=(
            p.Tier(role="approver", users=(), timeout_seconds=900, approvals_required=1),
            p.Tier(role=None, users=("lead", "cfo@example.com"), timeout_seconds=3600, approvals_required=2),
        ),
        timeout_outcome="reject",
        notify_webhook_url="",
    )
    stored = p.ladder_to_json(ladder)
    assert stored == {
        "name": "finance",
        "tiers": [
            {"role": "approver", "timeout_seconds": 900, "approvals_required": 1},
            {"users": ["lead", "cfo@example.com"], "timeout_seconds": 3600, "approvals_required": 2},
        ],
        "timeout_outcome": "reject",
        "notify_webhook_url": "",
    }
    assert p.ladder_from_json(stored) == ladder
    assert p.ladder_validate(stored) == ladder
    no_outcome = {k: v for k, v in LADDER.items() if k != "timeout_outcome"}
    assert p.ladder_validate(no_outcome).timeout_outcome == "reject"


def ladder_with(path: list, value: Any) -> dict:
    data = copy.deepcopy(LADDER)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["name"], DELETE, "name"),
        (["name"], "", "name"),
        (["name"], "n" * 101, "name"),
        (["name"], "fin ance", "name"),
        (["name"], "<script>", "name"),
        (["tiers"], DELETE, "tiers"),
        (["tiers"], [], "tiers"),
        (["tiers"], [{"role": "approver", "timeout_seconds": 60}] * 11, "tiers"),
        (["tiers", 1], "lead", "tiers[1]"),
        (["tiers", 1, "role"], "approver", "tiers[1]"),  # both role and users
        (["tiers", 0, "role"], DELETE, "tiers[0]"),  # neither
        (["tiers", 0, "role"], "owner", "tiers[0].role"),
        (["tiers", 0, "timeout_seconds"], DELETE, "tiers[0].timeout_seconds"),
        (["tiers", 1, "timeout_seconds"], 59, "tiers[1].timeout_seconds"),
        (["tiers", 1, "timeout_seconds"], 30 * 86400 + 1, "tiers[1].timeout_seconds"),
        (["tiers", 1, "timeout_seconds"], 900.5, "tiers[1].timeout_seconds"),
        (["tiers", 1, "timeout_seconds"], "900", "tiers[1].timeout_seconds"),
        (["tiers", 1, "approvals_required"], 0, "tiers[1].approvals_required"),
        (["tiers", 1, "approvals_required"], 3, "tiers[1].approvals_required"),  # only two users
        (["tiers", 0, "approvals_required"], 6, "tiers[0].approvals_required"),
        (["tiers", 0, "approvals_required"], True, "tiers[0].approvals_required"),
        (["tiers", 1, "users"], [], "tiers[1].users"),
        (["tiers", 1, "users"], "lead", "tiers[1].users"),
        (["tiers", 1, "users"], [f"u{i}" for i in range(51)], "tiers[1].users"),
        (["tiers", 1, "users"], ["lead", "lead"], "tiers[1].users[1]"),
        (["tiers", 1, "users"], ["lead", "a b"], "tiers[1].users[1]"),
        (["tiers", 1, "users"], ["lead", ""], "tiers[1].users[1]"),
        (["tiers", 1, "users"], ["lead", "u" * 151], "tiers[1].users[1]"),
        (["tiers", 1, "users"], ["lead", 7], "tiers[1].users[1]"),
        (["tiers", 1, "escalate_to"], "x", "tiers[1].escalate_to"),
        (["timeout_outcome"], "expire", "timeout_outcome"),
        (["timeout_outcome"], 1, "timeout_outcome"),
        (["on_timeout"], "reject", "on_timeout"),
    ],
)
def test_ladder_validation_names_the_exact_field(path, value, field):
    with pytest.raises(p.LadderInvalid) as exc:
        p.ladder_validate(ladder_with(path, value))
    assert exc.value.field == field


def test_a_ladder_never_approves_on_timeout():
    with pytest.raises(p.LadderInvalid) as exc:
        p.ladder_validate(ladder_with(["timeout_outcome"], "approve"))
    assert exc.value.field == "timeout_outcome"
    assert "fails closed" in exc.value.message and "never approved" in exc.value.message


def test_ladder_bounds_at_the_limit_are_accepted():
    users = [f"user{i}" for i in range(50)]
    data = {
        "name": "x" * 100,
        "tiers": [{"users": users, "timeout_seconds": 30 * 86400, "approvals_required": 5}]
        + [{"role": role, "timeout_seconds": 60} for role in ["annotator", "approver", "engineer", "admin"] * 2]
        + [{"users": ["solo"], "timeout_seconds": 60, "approvals_required": 1}],
        "notify_webhook_url": "https://hooks.example.com/" + "a" * (2000 - 26),
    }
    ladder = p.ladder_validate(data)
    assert len(ladder.tiers) == 10 and len(ladder.notify_webhook_url) == 2000
    assert ladder.tiers[0].approvals_required == 5
    assert p.ladder_from_json(p.ladder_to_json(ladder)) == ladder


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "http://127.0.0.1:8080/hook?x=1",
        "HTTPS://example.com",
        "https://[::1]:443/p",
    ],
)
def test_webhook_url_accepted(url):
    assert p.ladder_validate({**LADDER, "notify_webhook_url": url}).notify_webhook_url == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/x", "http"),
        ("javascript:alert(1)", "http"),
        ("file:///etc/passwd", "http"),
        ("//example.com/x", "http"),
        ("https://user:pw@example.com/", "password"),
        ("https://user@example.com/", "password"),
        ("https://example.com\\@evil.com/", "password"),
        ("https:///path", "host"),
        ("https://example.com:99999/", "port"),
        ("https://example.com:x/", "port"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/\n", "spaces"),
        ("https://example.com/" + "a" * 2000, "2000"),
        ("https://example.com/\x00", "NUL"),
        (5, "URL"),
    ],
)
def test_webhook_url_refused(url, words):
    with pytest.raises(p.LadderInvalid) as exc:
        p.ladder_validate({**LADDER, "notify_webhook_url": url})
    assert exc.value.field == "notify_webhook_url"
    assert words in exc.value.message


def test_empty_or_null_webhook_url_means_none():
    assert p.ladder_validate({**LADDER, "notify_webhook_url": ""}).notify_webhook_url == ""
    assert p.ladder_validate({**LADDER, "notify_webhook_url": None}).notify_webhook_url == ""
