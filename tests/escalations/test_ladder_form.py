"""The ladder editor's pure half: form rows to the API's body, the validator's error paths to
form fields, the row buttons, and the readable changes between versions."""

from __future__ import annotations

import pytest

from escalations import ladder_form, policies


def _row(**values: str) -> dict[str, str]:
    return {**ladder_form.blank_tier(), **values}


def test_rows_become_the_apis_body_in_seconds():
    rows = [
        _row(who="approver", timeout="15", unit="minutes", approvals="1"),
        _row(who="users", users="lead, cfo\nceo", timeout="90", unit="seconds", approvals="2"),
    ]
    document, errors = ladder_form.ladder_document(
        name=" finance ", rows=rows, timeout_outcome="reject", notify_webhook_url=" https://hooks.example/x "
    )
    assert errors == {}
    assert document == {
        "name": "finance",
        "tiers": [
            {"role": "approver", "timeout_seconds": 900, "approvals_required": 1},
            {"users": ["lead", "cfo", "ceo"], "timeout_seconds": 90, "approvals_required": 2},
        ],
        "timeout_outcome": "reject",
        "notify_webhook_url": "https://hooks.example/x",
    }
    assert policies.ladder_validate(document).tiers[1].users == ("lead", "cfo", "ceo")


def test_a_stored_ladder_fills_the_rows_back_in_the_unit_it_reads_best():
    stored = [
        {"role": "approver", "timeout_seconds": 3600, "approvals_required": 1},
        {"users": ["lead", "cfo"], "timeout_seconds": 90, "approvals_required": 2},
    ]
    rows = [ladder_form.tier_row_from_json(t) for t in stored]
    assert rows[0] == {"who": "approver", "users": "", "timeout": "60", "unit": "minutes", "approvals": "1"}
    assert rows[1] == {"who": "users", "users": "lead\ncfo", "timeout": "90", "unit": "seconds", "approvals": "2"}
    document, _ = ladder_form.ladder_document(name="x", rows=rows, timeout_outcome="", notify_webhook_url="")
    assert document["tiers"] == stored


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"timeout": "1.5"}, "t-0-timeout", "Enter a whole number of minutes."),
        ({"timeout": "-5"}, "t-0-timeout", "Enter a whole number of minutes."),
        ({"unit": "hours"}, "t-0-unit", "Choose minutes or seconds."),
        ({"approvals": "two"}, "t-0-approvals", "Enter a whole number."),
    ],
)
def test_what_cannot_be_read_is_an_error_on_its_field(values, field, message):
    _, errors = ladder_form.ladder_document(
        name="x", rows=[_row(**values)], timeout_outcome="reject", notify_webhook_url=""
    )
    assert errors == {field: [message]}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("tiers[1].timeout_seconds", "t-1-timeout"),
        ("tiers[0].users[2]", "t-0-users"),
        ("tiers[0].users", "t-0-users"),
        ("tiers[3].role", "t-3-who"),
        ("tiers[2].approvals_required", "t-2-approvals"),
        ("tiers[2]", "t-2-who"),
        ("tiers", "tiers"),
        ("name", "name"),
        ("timeout_outcome", "timeout_outcome"),
        ("notify_webhook_url", "notify_webhook_url"),
        ("body", "form"),
        ("project", "form"),
    ],
)
def test_error_paths_map_to_the_field_beside_which_they_show(path, field):
    assert ladder_form.form_field_for(path) == field


def test_every_validator_error_of_a_tier_lands_on_a_field_of_that_row():
    cases = [
        ([_row(timeout="0")], "t-0-timeout"),
        ([_row(), _row(who="users", users="")], "t-1-users"),
        ([_row(), _row(who="users", users="ok bad!name")], "t-1-users"),
        ([_row(who="users", users="a", approvals="2")], "t-0-approvals"),
        ([_row(who="approver", users="lead")], "t-0-who"),
        ([_row(who="owner")], "t-0-who"),
        ([], "tiers"),
    ]
    for rows, field in cases:
        document, errors = ladder_form.ladder_document(name="x", rows=rows, timeout_outcome="", notify_webhook_url="")
        assert errors == {}
        with pytest.raises(policies.PolicyInvalid) as caught:
            policies.ladder_validate(document)
        mapped = ladder_form.errors_for_form({caught.value.field: [caught.value.message]}, document)
        assert list(mapped) == [field], (rows, caught.value.field)


def test_a_bad_username_is_named_and_a_timeout_is_told_in_minutes_and_seconds():
    document, _ = ladder_form.ladder_document(
        name="x", rows=[_row(who="users", users="ok bad!name")], timeout_outcome="", notify_webhook_url=""
    )
    mapped = ladder_form.errors_for_form({"tiers[0].users[1]": ["Not a username."]}, document)
    assert mapped == {"t-0-users": ["“bad!name”: Not a username."]}
    mapped = ladder_form.errors_for_form(
        {"tiers[0].timeout_seconds": ["Must be a whole number from 60 to 2592000."]}, document
    )
    assert mapped == {"t-0-timeout": ["Must be from 1 minute to 30 days (60 to 2,592,000 seconds)."]}


def test_row_buttons_add_move_and_remove():
    a, b = _row(who="approver"), _row(who="admin", timeout="5", unit="seconds")
    assert ladder_form.rows_apply([a, b], "up-1") == [b, a]
    assert ladder_form.rows_apply([a, b], "down-0") == [b, a]
    assert ladder_form.rows_apply([a, b], "up-0") == [a, b]
    assert ladder_form.rows_apply([a, b], "remove-0") == [b]
    assert ladder_form.rows_apply([a, b], "remove-7") == [a, b]
    assert ladder_form.rows_apply([a, b], "bogus") == [a, b]
    added = ladder_form.rows_apply([a, b], "add")
    assert len(added) == 3 and (added[2]["timeout"], added[2]["unit"]) == ("5", "seconds")
    full = [_row()] * ladder_form.MAX_TIERS
    assert len(ladder_form.rows_apply(full, "add")) == ladder_form.MAX_TIERS


def test_a_post_cannot_make_more_rows_than_a_ladder_may_have():
    data = {"t-count": "100000", **{f"t-{i}-who": "approver" for i in range(20)}}
    assert len(ladder_form.tier_rows_from_post(data)) == ladder_form.MAX_TIERS
    assert ladder_form.tier_rows_from_post({"t-count": "-1"}) == []
    assert ladder_form.tier_rows_from_post({"t-count": "many"}) == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "1 min"), (90, "1 min 30 s"), (3600, "1 h"), (5400, "1 h 30 min"), (86400, "1 day"), (172800, "2 days")],
)
def test_durations_read_exactly(seconds, text):
    assert ladder_form.duration_text(seconds) == text


def _ladder(*tiers, outcome="reject", url=""):
    return {"name": "x", "tiers": list(tiers), "timeout_outcome": outcome, "notify_webhook_url": url}


APPROVERS = {"role": "approver", "timeout_seconds": 900, "approvals_required": 1}
LEADS = {"users": ["lead", "cfo"], "timeout_seconds": 3600, "approvals_required": 2}
ADMINS = {"role": "admin", "timeout_seconds": 7200, "approvals_required": 1}


def test_changes_between_versions_read_as_sentences():
    assert ladder_form.ladder_changes(None, _ladder(APPROVERS)) == ["First version."]
    assert ladder_form.ladder_changes(_ladder(APPROVERS), _ladder(APPROVERS)) == ["No change."]
    # A tier inserted in front is one tier added, not every tier changed.
    assert ladder_form.ladder_changes(_ladder(APPROVERS, LEADS), _ladder(ADMINS, APPROVERS, LEADS)) == [
        "Tier 1 added: any admin; 1 approval within 2 h."
    ]
    assert ladder_form.ladder_changes(_ladder(APPROVERS, LEADS), _ladder(APPROVERS)) == [
        "Tier 2 removed: lead, cfo; 2 approvals within 1 h."
    ]
    slower = {**LEADS, "timeout_seconds": 5400, "users": ["lead", "ceo"]}
    assert ladder_form.ladder_changes(_ladder(APPROVERS, LEADS), _ladder(APPROVERS, slower)) == [
        "Tier 2 changed: who: lead, cfo → lead, ceo; timeout: 1 h → 1 h 30 min"
    ]
    assert ladder_form.ladder_changes(
        _ladder(APPROVERS), _ladder(APPROVERS, url="https://hooks.slack.com/services/SECRET")
    ) == ["Notification webhook set."]
    assert ladder_form.ladder_changes(_ladder(APPROVERS, url="https://a/1"), _ladder(APPROVERS, url="https://a/2")) == [
        "Notification webhook changed."
    ]
