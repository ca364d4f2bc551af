"""labeling/rubric.py is pure: rubric parsing and answer validation, tested without a database."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labeling import rubric
from reviewapp.ingest_schemas import errors_from_pydantic

# The roles of a support transcript: system, user, assistant (tool call), tool, assistant.
ROLES = ["system", "user", "assistant", "tool", "assistant"]


def q(**fields) -> rubric.Question:
    fields.setdefault("key", "q")
    fields.setdefault("label", "Question")
    return rubric.Question.model_validate(fields)


def check(question: rubric.Question, value, *, roles: list[str] | None = ROLES) -> tuple[dict, dict]:
    return rubric.answers_validate([question], {question.key: value}, turn_roles=roles)


def rubric_errors(body: dict) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        rubric.Rubric.model_validate(body)
    return errors_from_pydantic(exc.value)


# --- answers, per question type ----------------------------------------------------------------


def test_single_choice_accepts_one_listed_option_only():
    question = q(type="single_choice", options=["good", "bad"])

    assert check(question, "good") == ({"q": "good"}, {})
    assert check(question, "meh") == ({}, {"answers.q": ["Choose one of: good, bad."]})
    assert check(question, ["good"]) == ({}, {"answers.q": ["Choose one of: good, bad."]})


def test_multi_choice_takes_a_list_of_known_options_stored_in_option_order():
    question = q(type="multi_choice", options=["tone", "facts", "policy"])

    assert check(question, ["policy", "tone"]) == ({"q": ["tone", "policy"]}, {})
    assert check(question, "tone") == ({}, {"answers.q": ["Send a list of options."]})
    assert check(question, ["tone", 3]) == ({}, {"answers.q": ["Send a list of options."]})
    assert check(question, ["tone", "rudeness"]) == ({}, {"answers.q": ["Unknown options: rudeness."]})
    assert check(question, ["tone", "tone"]) == ({}, {"answers.q": ["Options repeat."]})


def test_rating_accepts_whole_numbers_within_its_bounds_inclusive():
    question = q(type="rating", min=1, max=5)

    assert check(question, 1) == ({"q": 1}, {})
    assert check(question, 5) == ({"q": 5}, {})
    assert check(question, 0) == ({}, {"answers.q": ["Must be from 1 to 5."]})
    assert check(question, 6) == ({}, {"answers.q": ["Must be from 1 to 5."]})
    assert check(question, 2.5) == ({}, {"answers.q": ["Send a whole number from 1 to 5."]})
    assert check(question, "3") == ({}, {"answers.q": ["Send a whole number from 1 to 5."]})


def test_a_bool_is_not_a_number_for_ratings_or_turns():
    # In Python True == 1; a client sending true for "1 star" or "message 1" is a client bug.
    assert check(q(type="rating", min=0, max=1), True) == ({}, {"answers.q": ["Send a whole number from 0 to 1."]})
    assert check(q(type="turn"), True) == ({}, {"answers.q": ["Send the index of a message of the transcript."]})


def test_boolean_accepts_only_true_or_false():
    question = q(type="boolean")

    assert check(question, False) == ({"q": False}, {})
    assert check(question, True) == ({"q": True}, {})
    assert check(question, 1) == ({}, {"answers.q": ["Send true or false."]})
    assert check(question, "yes") == ({}, {"answers.q": ["Send true or false."]})


def test_text_accepts_strings_up_to_the_limit():
    question = q(type="text", required=False)

    assert check(question, "fine") == ({"q": "fine"}, {})
    assert check(question, "x" * rubric.TEXT_MAX) == ({"q": "x" * rubric.TEXT_MAX}, {})
    assert check(question, "x" * (rubric.TEXT_MAX + 1)) == ({}, {"answers.q": ["At most 10000 characters."]})
    assert check(question, 42) == ({}, {"answers.q": ["Send text."]})


def test_turn_question_points_at_a_message_of_an_allowed_role():
    question = q(type="turn")  # assistant turns by default

    assert question.roles == ["assistant"]
    assert check(question, 2) == ({"q": 2}, {})
    assert check(question, 4) == ({"q": 4}, {})
    assert check(question, 1) == ({}, {"answers.q": ["Message 1 is a user turn; pick a assistant turn."]})
    assert check(question, 5) == ({}, {"answers.q": ["No message 5; the transcript has 5."]})
    assert check(question, -1) == ({}, {"answers.q": ["No message -1; the transcript has 5."]})
    assert check(question, "2") == ({}, {"answers.q": ["Send the index of a message of the transcript."]})


def test_turn_question_with_several_roles_accepts_any_of_them():
    question = q(type="turn", roles=["user", "tool"])

    assert check(question, 1) == ({"q": 1}, {})
    assert check(question, 3) == ({"q": 3}, {})
    assert check(question, 2) == ({}, {"answers.q": ["Message 2 is a assistant turn; pick a user or tool turn."]})


def test_turn_answers_are_only_type_checked_without_a_transcript():
    assert check(q(type="turn"), 99, roles=None) == ({"q": 99}, {})


def test_required_questions_must_be_answered_and_optional_ones_may_be_left_out():
    questions = [
        q(key="quality", type="single_choice", options=["good", "bad"]),
        q(key="notes", type="text", required=False),
    ]

    for empty in ({}, {"quality": None}, {"quality": ""}, {"quality": []}):
        assert rubric.answers_validate(questions, empty) == ({}, {"answers.quality": ["This question is required."]})
    assert rubric.answers_validate(questions, {"quality": "bad", "notes": ""}) == ({"quality": "bad"}, {})


def test_partial_answers_skip_required_checks_but_still_check_values():
    questions = [
        q(key="quality", type="single_choice", options=["good", "bad"]),
        q(key="stars", type="rating", min=1, max=3),
    ]

    assert rubric.answers_validate(questions, {"stars": 2}, partial=True) == ({"stars": 2}, {})
    assert rubric.answers_validate(questions, {"stars": 9}, partial=True) == (
        {},
        {"answers.stars": ["Must be from 1 to 3."]},
    )


def test_unknown_answer_keys_are_named_and_the_rest_still_checked():
    questions = [q(key="quality", type="single_choice", options=["good", "bad"])]

    assert rubric.answers_validate(questions, {"quality": "good", "qualty": "bad"}) == (
        {"quality": "good"},
        {"answers.qualty": ["No such question in this schema version."]},
    )


def test_answers_must_be_an_object():
    questions = [q(type="boolean")]

    for wrong in (["good"], "good", None, 3):
        assert rubric.answers_validate(questions, wrong) == (
            {},
            {"answers": ["Send an object of answers keyed by question key."]},
        )


# --- agreement between labels ------------------------------------------------------------------


def test_answers_agree_compares_every_question_except_free_text():
    questions = [
        q(key="quality", type="single_choice", options=["good", "bad"]),
        q(key="issues", type="multi_choice", options=["tone", "facts"], required=False),
        q(key="notes", type="text", required=False),
    ]

    assert rubric.answers_agree(questions, [{"quality": "good", "notes": "a"}, {"quality": "good", "notes": "b"}])
    assert rubric.answers_agree(
        questions, [{"quality": "bad", "issues": ["tone"]}, {"quality": "bad", "issues": ["tone"]}]
    )
    assert not rubric.answers_agree(questions, [{"quality": "good"}, {"quality": "bad"}])
    assert not rubric.answers_agree(questions, [{"quality": "bad", "issues": ["tone"]}, {"quality": "bad"}])


def test_measurement_level_and_categories_per_type():
    assert q(type="rating", min=1, max=3).level == "ordinal"
    assert q(type="rating", min=1, max=3).categories() == [1, 2, 3]
    assert q(type="single_choice", options=["a", "b"]).level == "nominal"
    assert q(type="single_choice", options=["a", "b"]).categories() == ["a", "b"]
    assert q(type="boolean").categories() == [False, True]
    assert q(type="text").comparable is False
    assert q(type="turn").comparable is True


# --- rubric definitions ------------------------------------------------------------------------


def test_a_valid_rubric_with_every_question_type_parses():
    parsed = rubric.Rubric.model_validate(
        {
            "name": "  Support quality ",
            "instructions": "Judge the **final** answer.",
            "questions": [
                {
                    "key": "quality",
                    "type": "single_choice",
                    "label": "Right?",
                    "options": ["good", "bad"],
                    "judge_criterion": "correctness",
                },
                {"key": "issues", "type": "multi_choice", "label": "Issues", "options": ["tone", "facts"]},
                {"key": "stars", "type": "rating", "label": "Stars", "min": 1, "max": 5},
                {"key": "resolved", "type": "boolean", "label": "Resolved?"},
                {"key": "notes", "type": "text", "label": "Notes", "required": False},
                {"key": "bad_turn", "type": "turn", "label": "Which turn went wrong?", "required": False},
            ],
        }
    )

    assert parsed.name == "Support quality"
    assert [x.type for x in parsed.questions] == ["single_choice", "multi_choice", "rating", "boolean", "text", "turn"]
    assert parsed.questions[0].judge_criterion == "correctness"
    assert [x.required for x in parsed.questions] == [True, True, True, True, False, False]


def test_duplicate_question_keys_are_refused_naming_the_questions():
    errors = rubric_errors(
        {
            "name": "R",
            "questions": [{"key": "a", "type": "boolean", "label": "A"}, {"key": "a", "type": "text", "label": "B"}],
        }
    )

    assert errors == {"questions": ["question keys must be unique; repeated: a"]}


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ({"type": "single_choice"}, {"questions[0].options": ["choice questions need at least two options"]}),
        (
            {"type": "multi_choice", "options": ["only"]},
            {"questions[0].options": ["choice questions need at least two options"]},
        ),
        ({"type": "single_choice", "options": ["a", "a"]}, {"questions[0].options": ["options must be unique"]}),
        (
            {"type": "single_choice", "options": ["a", ""]},
            {"questions[0].options[1]": ["String should have at least 1 character"]},
        ),
        ({"type": "boolean", "options": ["a", "b"]}, {"questions[0].options": ["boolean questions take no options"]}),
        (
            {"type": "rating"},
            {
                "questions[0].min": ["rating questions need min and max"],
                "questions[0].max": ["rating questions need min and max"],
            },
        ),
        ({"type": "rating", "min": 1}, {"questions[0].max": ["rating questions need min and max"]}),
        ({"type": "rating", "min": 5, "max": 5}, {"questions[0].max": ["min must be below max"]}),
        ({"type": "rating", "min": 0, "max": 101}, {"questions[0].max": ["a rating scale has at most 101 points"]}),
        ({"type": "text", "max": 3}, {"questions[0].max": ["only rating questions take min and max"]}),
        (
            {"type": "turn", "roles": ["bot"]},
            {"questions[0].roles[0]": ["Input should be 'system', 'developer', 'user', 'assistant' or 'tool'"]},
        ),
        (
            {"type": "essay"},
            {
                "questions[0].type": [
                    "Input should be 'single_choice', 'multi_choice', 'rating', 'boolean', 'text' or 'turn'"
                ]
            },
        ),
        (
            {"type": "boolean", "key": "Bad Key"},
            {"questions[0].key": ["String should match pattern '^[a-z][a-z0-9_]{0,63}$'"]},
        ),
        ({"type": "boolean", "colour": "red"}, {"questions[0].colour": ["Extra inputs are not permitted"]}),
    ],
)
def test_inconsistent_questions_are_refused_naming_the_field(question, expected):
    body = {"name": "R", "questions": [{"key": "q", "label": "Q", **question}]}

    assert rubric_errors(body) == expected


def test_a_rubric_needs_a_name_and_at_least_one_question():
    assert rubric_errors({"name": " ", "questions": []}) == {
        "name": ["String should have at least 1 character"],
        "questions": ["List should have at least 1 item after validation, not 0"],
    }


def test_questions_round_trip_through_json_storage():
    stored = [x.model_dump(exclude_none=True) for x in [q(type="turn"), q(key="r", type="rating", min=1, max=3)]]

    assert stored[0]["roles"] == ["assistant"]
    assert rubric.questions_from_json(stored) == [q(type="turn"), q(key="r", type="rating", min=1, max=3)]


# --- how judges and humans meet (evaluation's calibration pairs) --------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            {"type": "boolean", "passing_options": ["a"]},
            {"questions[0].passing_options": ["only choice questions take passing_options"]},
        ),
        (
            {"type": "single_choice", "options": ["good", "bad"], "passing_options": ["great"]},
            {"questions[0].passing_options": ["not among the options: great"]},
        ),
        (
            {"type": "single_choice", "options": ["good", "bad"], "passing_min": 1},
            {"questions[0].passing_min": ["only rating questions take passing_min"]},
        ),
        (
            {"type": "rating", "min": 1, "max": 5, "passing_min": 6},
            {"questions[0].passing_min": ["must be from 1 to 5"]},
        ),
        (
            {"type": "boolean", "judge_pass_threshold": 1e12},
            {"questions[0].judge_pass_threshold": ["Input should be less than or equal to 1000000000"]},
        ),
        (
            {"type": "boolean", "judge_pass_threshold": "nan"},
            {"questions[0].judge_pass_threshold": ["Input should be a finite number"]},
        ),
        (
            {"type": "boolean", "judge_pass_labels": ["x"] * 21},
            {"questions[0].judge_pass_labels": ["List should have at most 20 items after validation, not 21"]},
        ),
        (
            {"type": "boolean", "judge_pass_labels": ["x" * 101]},
            {"questions[0].judge_pass_labels[0]": ["String should have at most 100 characters"]},
        ),
    ],
)
def test_judge_and_passing_declarations_are_bounded_and_checked_against_the_type(question, expected):
    body = {"name": "R", "questions": [{"key": "q", "label": "Q", **question}]}

    assert rubric_errors(body) == expected


def test_human_answers_pass_by_declared_options_minimum_or_true():
    boolean = q(type="boolean")
    choice = q(type="single_choice", options=["good", "ok", "bad"], passing_options=["good", "ok"])
    multi = q(type="multi_choice", options=["polite", "rude", "wrong"], passing_options=["polite"])
    rating = q(type="rating", min=1, max=5, passing_min=4)

    assert [rubric.human_passes(boolean, v) for v in (True, False, None)] == [True, False, None]
    assert [rubric.human_passes(choice, v) for v in ("good", "ok", "bad")] == [True, True, False]
    assert [rubric.human_passes(multi, v) for v in (["polite"], ["polite", "rude"])] == [True, False]
    assert [rubric.human_passes(rating, v) for v in (3, 4, 5, True)] == [False, True, True, None]
    # Nothing declared: no verdict rather than a guess.
    assert rubric.human_passes(q(type="rating", min=1, max=5), 5) is None
    assert rubric.human_passes(q(type="single_choice", options=["a", "b"]), "a") is None


def test_judge_verdicts_pass_by_label_first_then_score_threshold():
    question = q(type="boolean", judge_pass_labels=["good", "Correct", "pass"], judge_pass_threshold=0.7)

    assert rubric.judge_passes(question, score=0.1, label="correct") is True
    assert rubric.judge_passes(question, score=0.9, label="wrong") is False
    assert rubric.judge_passes(question, score=0.7, label="") is True
    assert rubric.judge_passes(question, score=0.69, label="") is False
    assert rubric.judge_passes(question, score=None, label="") is None
    assert rubric.judge_passes(q(type="boolean"), score=1.0, label="good") is None
