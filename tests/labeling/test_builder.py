"""labeling/builder.py, pure: form rows to the API's documents, error paths to form fields,
the builder's buttons, the diff between versions, and daily budgets over a preview."""

from __future__ import annotations

import datetime as dt

from django.http import QueryDict

from labeling import builder, sampling


def test_error_paths_map_to_the_form_field_beside_which_they_show():
    assert builder.form_field_for("questions[2].options") == "q-2-options"
    assert builder.form_field_for("questions[2].options[1]") == "q-2-options"
    assert builder.form_field_for("sampling[0].if.judge") == "r-0-if_judge"
    assert builder.form_field_for("sampling[3].if") == "r-3-if"
    assert builder.form_field_for("sampling[1].rate") == "r-1-rate"
    assert builder.form_field_for("questions") == "questions"
    assert builder.form_field_for("name") == "name"


def test_stored_questions_round_trip_through_the_form():
    question = {
        "key": "q",
        "type": "turn",
        "label": "Which turn?",
        "required": False,
        "roles": ["assistant", "tool"],
        "judge_criterion": "c",
        "judge_pass_labels": ["pass", "ok"],
        "judge_pass_threshold": 0.5,
    }
    row = builder.question_row_from_json(question)
    post = QueryDict(mutable=True)
    post["q-count"] = "1"
    for name, value in row.items():
        if name == "roles":
            post.setlist("q-0-roles", value)
        elif name == "required":
            if value:
                post["q-0-required"] = "1"
        else:
            post[f"q-0-{name}"] = value
    document, errors = builder.rubric_document("R", "", builder.question_rows_from_post(post))
    assert errors == {}
    assert document["questions"] == [question]
    parsed, errors = builder.rubric_validate(document)
    assert errors == {} and parsed is not None


def test_unreadable_numbers_and_nul_are_reported_on_their_field():
    row = builder.blank_question() | {"key": "r", "type": "rating", "label": "x", "min": "one", "max": "1e400"}
    _, errors = builder.rubric_document("N\x00", "", [row])
    assert errors == {
        "name": ["Remove the NUL character."],
        "q-0-min": ["Enter a whole number."],
        "q-0-max": ["Enter a whole number."],
    }


def test_rules_round_trip_through_the_form():
    rule = {
        "name": "unsure",
        "rate": 0.5,
        "strategy": "uncertainty",
        "uniform_share": 0.3,
        "max_per_day": 20,
        "if": {
            "agent_version": ["v1", "v2"],
            "tags_any": ["refund"],
            "metadata": {"plan": "pro"},
            "feedback_rating": "down",
            "user_rephrased": True,
            "escalated_by_user": False,
            "judge": "gpt",
            "criterion": "correct",
            "score_below": 0.5,
            "confidence_below": 0.8,
            "signal": "frustration",
            "signal_source": "derived",
        },
    }
    rules, errors = builder.rules_document([builder.rule_row_from_json(rule)])
    assert errors == {}
    parsed, errors = builder.rules_validate(rules)
    assert errors == {}
    assert builder.rules_dump(parsed) == [rule]


def test_rule_errors_name_the_form_field():
    row = builder.blank_rule() | {"rate": "2", "if_signal_source": "agent", "uniform_share": "0.5"}
    rules, errors = builder.rules_document([row])
    assert errors == {}
    _, model_errors = builder.rules_validate(rules)
    assert set(model_errors) == {"r-0-rate", "r-0-if", "r-0-uniform_share"}


def test_rubric_diff_names_added_removed_changed_and_reordered_questions():
    old = [
        {"key": "a", "type": "boolean", "label": "A"},
        {"key": "b", "type": "single_choice", "label": "B", "options": ["x", "y"]},
        {"key": "c", "type": "text", "label": "C"},
    ]
    new = [
        {"key": "b", "type": "single_choice", "label": "B", "options": ["x", "y", "z"], "required": False},
        {"key": "a", "type": "boolean", "label": "A"},
        {"key": "d", "type": "text", "label": "D"},
    ]
    diff = builder.rubric_diff(old, new, old_instructions="x", new_instructions="x")
    assert diff.added == [("d", "D")]
    assert diff.removed == [("c", "C")]
    assert [(c.key, c.fields) for c in diff.changed] == [
        ("b", [("options", "x, y", "x, y, z"), ("required", "yes", "no")])
    ]
    assert diff.reordered and not diff.instructions_changed
    assert builder.rubric_diff(old, old).empty


def _candidate(cid: int, u: float, rule: sampling.SamplingRule, index: int = 0) -> sampling.Candidate:
    return sampling.Candidate(cid, u, rule.rate, (sampling.RuleMatch(index, rule),), "s")


def test_daily_budgets_admit_the_lowest_hashes_of_each_day():
    capped = sampling.SamplingRule(rate=1.0, max_per_day=1)
    free = sampling.SamplingRule(rate=1.0)
    day1, day2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
    candidates = [
        (day1, _candidate(1, 0.9, capped)),
        (day1, _candidate(2, 0.1, capped)),
        (day1, _candidate(3, 0.5, free, 1)),
        (day2, _candidate(4, 0.3, capped)),
    ]
    admitted = builder.admitted_within_budgets(candidates, max_per_day=None)
    assert sorted(c.conversation_id for c in admitted) == [2, 3, 4]
    admitted = builder.admitted_within_budgets(candidates, max_per_day=1)
    assert sorted(c.conversation_id for c in admitted) == [2, 4]
