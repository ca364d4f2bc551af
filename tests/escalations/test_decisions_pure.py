"""escalations/deciding.py: who may decide at a tier, and what an edit changed. No database."""

from __future__ import annotations

import pytest

from escalations.deciding import args_diff, may_decide, tier_admits, tiers_from_stored
from escalations.policies import Tier


def _tier(role=None, users=(), approvals=1):
    return Tier(role=role, users=tuple(users), timeout_seconds=900, approvals_required=approvals)


@pytest.mark.parametrize(
    ("tier", "username", "role", "admitted"),
    [
        (_tier(role="approver"), "alice", "approver", True),
        (_tier(role="approver"), "alice", "engineer", False),
        (_tier(role="approver"), "alice", "annotator", False),
        # Admins may always decide at role tiers...
        (_tier(role="approver"), "root", "admin", True),
        (_tier(role="engineer"), "root", "admin", True),
        # ... but a tier naming people admits only them.
        (_tier(users=["lead"]), "root", "admin", False),
        (_tier(users=["lead", "cfo"]), "cfo", "approver", True),
        (_tier(users=["lead"]), "Lead", "approver", False),  # usernames compare exactly
        (_tier(users=["lead"]), "", "approver", False),
        (_tier(role=None, users=()), "alice", "admin", False),
    ],
)
def test_tier_admits(tier, username, role, admitted):
    assert tier_admits(tier, username=username, role=role) is admitted


def test_may_decide_needs_the_capability_too():
    tier = _tier(users=["lead"])
    assert may_decide(tier, username="lead", role="approver", can_decide=True) is True
    assert may_decide(tier, username="lead", role="engineer", can_decide=False) is False


def test_tiers_are_read_from_the_stored_form():
    stored = [
        {"role": "approver", "timeout_seconds": 900, "approvals_required": 1},
        {"users": ["lead", "cfo"], "timeout_seconds": 3600, "approvals_required": 2},
        {"role": None, "users": ["a"], "timeout_seconds": 60},
    ]
    assert tiers_from_stored(stored) == (
        Tier(role="approver", users=(), timeout_seconds=900, approvals_required=1),
        Tier(role=None, users=("lead", "cfo"), timeout_seconds=3600, approvals_required=2),
        Tier(role=None, users=("a",), timeout_seconds=60, approvals_required=1),
    )
    assert tiers_from_stored(None) == ()


def test_args_diff_of_an_amount_edit():
    assert args_diff({"amount": 450, "currency": "EUR"}, {"amount": 400, "currency": "EUR"}) == [
        {"path": "amount", "from": 450, "to": 400}
    ]


def test_args_diff_added_removed_and_nested_keys_in_sorted_order():
    before = {"b": 1, "customer": {"id": "c1", "tier": "gold"}, "note": "x"}
    after = {"a": True, "b": 1, "customer": {"id": "c2"}, "z": None}
    assert args_diff(before, after) == [
        {"path": "a", "to": True},
        {"path": "customer.id", "from": "c1", "to": "c2"},
        {"path": "customer.tier", "from": "gold"},
        {"path": "note", "from": "x"},
        {"path": "z", "to": None},
    ]


def test_args_diff_compares_lists_whole_and_tells_types_apart():
    assert args_diff({"items": [1, 2]}, {"items": [1, 2]}) == []
    assert args_diff({"items": [1, 2]}, {"items": [2, 1]}) == [{"path": "items", "from": [1, 2], "to": [2, 1]}]
    # 1, 1.0 and true are equal in Python and different args to an agent (and to the digest).
    assert args_diff({"n": 1}, {"n": 1.0}) == [{"path": "n", "from": 1, "to": 1.0}]
    assert args_diff({"n": 1}, {"n": True}) == [{"path": "n", "from": 1, "to": True}]
    assert args_diff({"x": {"a": 1}}, {"x": "a"}) == [{"path": "x", "from": {"a": 1}, "to": "a"}]


def test_args_diff_of_equal_args_is_empty():
    args = {"amount": 450, "customer": {"id": "c1"}, "items": [{"sku": "a"}]}
    assert args_diff(args, {**args}) == []


def test_args_diff_does_not_recurse_on_deep_input():
    deep_before: dict = {}
    deep_after: dict = {}
    node_b, node_a = deep_before, deep_after
    for _ in range(5_000):  # far past Python's recursion limit
        node_b["k"] = {}
        node_a["k"] = {}
        node_b, node_a = node_b["k"], node_a["k"]
    node_b["v"], node_a["v"] = 1, 2
    (change,) = args_diff(deep_before, deep_after)
    assert change["path"] == ".".join(["k"] * 5_000 + ["v"])
    assert (change["from"], change["to"]) == (1, 2)
