"""labeling/forms.py is pure: form parsing and presentation, tested without a request or a database.

Posted data is a plain MultiValueDict, items and labels are stand-ins with the attributes the
functions read, and the statistics payload is written out as the snapshot stores it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils.datastructures import MultiValueDict

from labeling import forms, rubric
from labeling.models import ItemStatus
from reviewapp import validation
from reviewapp.transcript import ToolCallView, TurnView


def q(**fields) -> rubric.Question:
    fields.setdefault("label", fields["key"].title())
    return rubric.Question.model_validate(fields)


QUALITY = q(key="quality", type="single_choice", options=["good", "bad"])
TAGS = q(key="tags", type="multi_choice", options=["rude", "wrong", "slow"], required=False)
STARS = q(key="stars", type="rating", min=1, max=5)
WIDE = q(key="wide", type="rating", min=0, max=20)
SOLVED = q(key="solved", type="boolean")
NOTE = q(key="note", type="text", required=False)
WHERE = q(key="where", type="turn")
TURNS = [
    TurnView(index=0, role="user", name="", text="Where is my refund?"),
    TurnView(
        index=1,
        role="assistant",
        name="",
        text="",
        tool_calls=[ToolCallView(id="c1", name="refund_status", arguments={})],
    ),
    TurnView(index=2, role="tool", name="", text='{"status": "sent"}'),
    TurnView(index=3, role="assistant", name="", text="x" * 95),
]


def posted(**fields) -> MultiValueDict:
    return MultiValueDict({key: value if isinstance(value, list) else [value] for key, value in fields.items()})


# --- the rubric as a form ----------------------------------------------------------------------


def test_question_views_check_the_answers_given_and_carry_their_errors():
    views = forms.question_views(
        [QUALITY, TAGS, SOLVED, NOTE],
        TURNS,
        answers={"quality": "bad", "tags": ["rude", "slow"], "solved": False, "note": "late"},
        errors={"answers.quality": ["Pick one."]},
    )

    assert [(v.number, v.key, v.field_name, v.multiple) for v in views] == [
        (1, "quality", "a-quality", False),
        (2, "tags", "a-tags", True),
        (3, "solved", "a-solved", False),
        (4, "note", "a-note", False),
    ]
    assert [(c.value, c.checked, c.kbd) for c in views[0].choices] == [("good", False, "1"), ("bad", True, "2")]
    assert [c.value for c in views[1].choices if c.checked] == ["rude", "slow"]
    assert [(c.value, c.text, c.checked) for c in views[2].choices] == [("yes", "Yes", False), ("no", "No", True)]
    assert views[3].text == "late"
    assert (views[0].errors, views[1].errors) == (["Pick one."], [])


def test_a_small_scale_is_keyed_by_its_own_digits_and_a_wide_one_by_position():
    stars, wide = forms.question_views([STARS, WIDE], TURNS)

    assert [(c.value, c.kbd) for c in stars.choices] == [(str(v), str(v)) for v in range(1, 6)]
    assert [c.kbd for c in wide.choices] == [*"1234567890", *[""] * 11]


def test_turn_questions_offer_only_their_roles_with_a_bounded_preview():
    [view] = forms.question_views([WHERE], TURNS, answers={"where": 3})

    assert [(c.value, c.text, c.checked) for c in view.choices] == [
        ("1", "#1 assistant", False),
        ("3", "#3 assistant", True),
    ]
    assert view.choices[0].detail == "calls refund_status"
    assert view.choices[1].detail == "x" * 90 + "…"


def test_answers_that_are_not_a_dict_show_an_empty_form():
    [view] = forms.question_views([QUALITY], TURNS, answers=["good"])  # a draft saved by an old client

    assert [c.checked for c in view.choices] == [False, False]


# --- posted fields to answers ------------------------------------------------------------------


def test_posted_fields_become_typed_answers_and_blanks_are_left_out():
    data = posted(
        **{
            "a-quality": "good",
            "a-tags": ["rude", "", "slow"],
            "a-stars": "4",
            "a-solved": "no",
            "a-note": "  late refund \n",
            "a-where": "",
            "unrelated": "x",
        }
    )

    answers = forms.answers_from_post([QUALITY, TAGS, STARS, SOLVED, NOTE, WHERE], data)

    assert answers == {"quality": "good", "tags": ["rude", "slow"], "stars": 4, "solved": False, "note": "late refund"}


@pytest.mark.parametrize(
    ("question", "raw"),
    [(STARS, "²"), (STARS, "4.5"), (STARS, str(2**31)), (SOLVED, "maybe"), (WHERE, "-")],
)
def test_unparseable_values_are_passed_on_as_sent_for_the_rubric_to_name(question, raw):
    answers = forms.answers_from_post([question], posted(**{f"a-{question.key}": raw}))

    assert answers == {question.key: raw}
    _, errors = rubric.answers_validate([question], answers, turn_roles=[t.role for t in TURNS])
    assert list(errors) == [f"answers.{question.key}"]


def test_an_empty_post_answers_nothing():
    assert forms.answers_from_post([QUALITY, TAGS, STARS], posted()) == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12), (None, None), ("", None), ("0", None), ("-3", None), ("abc", None), ("²", None), (str(2**63), None)],
)
def test_a_hint_id_is_an_id_or_nothing(value, expected):
    assert forms.id_or_none(value) == expected


def test_submit_fields_are_parsed_or_refused_naming_the_field():
    assert forms.submit_fields(posted(schema_version="7", time_spent_ms="1500", shown="9")) == (7, 1500, 9)
    assert forms.submit_fields(posted()) == (None, None, None)
    for field in ("schema_version", "time_spent_ms", "shown"):
        with pytest.raises(validation.InputError) as refused:
            forms.submit_fields(posted(**{field: "99999999999999999999"}))
        assert refused.value.errors == {field: [refused.value.message]}


# --- presentation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "final_source", "editable"),
    [
        (ItemStatus.OPEN, "", True),
        (ItemStatus.COMPLETED, "agreement", True),
        (ItemStatus.NEEDS_REVIEW, "", True),
        (ItemStatus.COMPLETED, "review", False),
        (ItemStatus.DROPPED, "", False),
    ],
)
def test_a_label_stays_editable_until_reviewed_or_dropped(status, final_source, editable):
    assert forms.label_editable(SimpleNamespace(status=status, final_source=final_source)) is editable


def test_figures_as_text():
    assert [forms.pct(v) for v in (None, 0, 0.456, 1)] == ["—", "0%", "46%", "100%"]
    assert [forms.num(None), forms.num(0.12345), forms.num(2.25, 1)] == ["—", "0.12", "2.2"]
    assert [forms.ci(v) for v in (None, [], [0.1], [None, 0.2], [0.1234, 0.5678])] == ["", "", "", "", "[0.12, 0.57]"]
    assert [forms.category_text(v) for v in (True, False, ["a", "b"], ("x",), 3)] == ["yes", "no", "a, b", "x", "3"]


def test_answer_text_shows_each_type_and_marks_missing_answers():
    assert [forms.answer_text(QUALITY, v, TURNS) for v in (None, "", [])] == ["—", "—", "—"]
    assert forms.answer_text(SOLVED, True, TURNS) == "yes"
    assert forms.answer_text(TAGS, ["rude", "slow"], TURNS) == "rude, slow"
    assert forms.answer_text(WHERE, 3, TURNS) == "#3 assistant"
    assert forms.answer_text(WHERE, 42, TURNS) == "#42"  # a turn the transcript no longer has
    assert forms.answer_text(None, 5, TURNS) == "5"  # a key the rubric no longer asks


def _label(answers, time_spent_ms=None):
    return SimpleNamespace(answers=answers, time_spent_ms=time_spent_ms)


def test_the_review_table_lines_up_every_label_and_keeps_keys_of_older_versions():
    labels = [
        _label({"quality": "good", "solved": True}, 61_500),
        _label({"quality": "bad", "solved": True, "legacy": "x"}, None),
    ]
    item = SimpleNamespace(final_answers={"quality": "bad"}, gold_answers=None)

    table = forms.review_table([QUALITY, SOLVED, NOTE], labels, item, TURNS)

    assert table == [
        {"key": "quality", "label": "Quality", "cells": ["good", "bad"], "final": "bad", "gold": "", "differs": True},
        {"key": "solved", "label": "Solved", "cells": ["yes", "yes"], "final": "—", "gold": "", "differs": False},
        {"key": "note", "label": "Note", "cells": ["—", "—"], "final": "—", "gold": "", "differs": False},
        {"key": "legacy", "label": "legacy", "cells": ["—", "x"], "final": "—", "gold": "", "differs": True},
    ]
    assert forms.time_spent_texts(labels) == ["61.5 s", "—"]


def test_annotator_rows_keep_their_fields_and_add_the_texts():
    rows = forms.annotator_rows(
        [
            {"user_id": 3, "username": "ann", "agreement_with_others": 0.9, "gold_accuracy": None},
            {"user_id": 4, "username": "bo", "median_seconds": 12.34, "labels_per_hour": 80},
        ]
    )

    assert rows == [
        {
            "user_id": 3,
            "username": "ann",
            "agreement_with_others": 0.9,
            "gold_accuracy": None,
            "agreement": "90%",
            "gold": "—",
            "median": "—",
            "per_hour": "—",
        },
        {
            "user_id": 4,
            "username": "bo",
            "median_seconds": 12.34,
            "labels_per_hour": 80,
            "agreement": "—",
            "gold": "—",
            "median": "12.3",
            "per_hour": "80",  # whole labels an hour: no false precision
        },
    ]


PAYLOAD = {
    "annotators": [{"user_id": 3, "username": "ann"}, {"user_id": 4, "username": "bo"}],
    "agreement": {
        "questions": {
            "quality": {
                "n_items": 40,
                "percent_agreement": 0.85,
                "fleiss_kappa": 0.61234,
                "fleiss_kappa_ci": [0.4, 0.8],
                "krippendorff_alpha": 0.6,
                "krippendorff_alpha_ci": None,
                "gwet_ac1": None,
                "gwet_ac1_ci": None,
                "prevalence": {"good": 0.75, "bad": 0.25},
            },
            "stars": {"n_items": 12, "percent_agreement": None, "prevalence": {}},
        },
        "pairs": [
            {"annotator_a": 3, "annotator_b": 4, "n_items": 5, "questions": {"quality": {"n_items": 5}}},
            {
                "annotator_a": 3,
                "annotator_b": 7,
                "n_items": 30,
                "questions": {
                    "quality": {
                        "n_items": 30,
                        "percent_agreement": 0.9,
                        "cohen_kappa": 0.7,
                        "cohen_kappa_weighted": 0.75,
                    },
                    "stars": {
                        "n_items": 12,
                        "percent_agreement": 0.5,
                        "cohen_kappa": 0.2,
                        "cohen_kappa_weighted": 0.41,
                    },
                },
            },
        ],
        "answer_pairs": {
            "quality": {"categories": ["good", "bad"], "rows": [[20, 3], [2, 5]], "n_items": 30},
            "stars": {"categories": [1, 2], "rows": [[1, 0], [0, 1]], "n_items": 2},
        },
    },
}


def test_the_agreement_report_as_the_page_shows_it():
    report = forms.agreement_report(PAYLOAD, [QUALITY, STARS], None)

    quality, stars = report["questions"]
    assert quality == {
        "key": "quality",
        "label": "Quality",
        "n_items": 40,
        "percent_agreement": "85%",
        "stats": [
            ("Fleiss' κ", "0.61", "[0.40, 0.80]"),
            ("Krippendorff's α", "0.60", ""),  # noqa: RUF001 - the letter is meant
            ("Gwet's AC1", "—", ""),
        ],
        "prevalence": [("good", "75%"), ("bad", "25%")],
    }
    assert (stars["percent_agreement"], stars["prevalence"]) == ("—", [])
    # Pairs with the most shared items first; an annotator missing from the rows keeps an id.
    assert report["n_pairs"] == 2
    assert [(p["a"], p["b"], p["n_items"]) for p in report["pairs"]] == [("ann", "user 7", 30), ("ann", "bo", 5)]
    # The weighted kappa only for the ordinal (rating) question.
    assert report["pairs"][0]["questions"] == [
        ("Quality", 30, "90%", "0.70", ""),
        ("Stars", 12, "50%", "0.20", "0.41"),
    ]
    assert report["pairs"][1]["questions"] == [("Quality", 5, "—", "—", "")]
    assert report["keys"] == ["quality", "stars"]
    assert report["confusion"] == {
        "key": "quality",
        "label": "Quality",
        "categories": ["good", "bad"],
        "rows": [("good", [20, 3], 23), ("bad", [2, 5], 7)],
        "totals": [22, 8],
        "n": 30,
    }


def test_the_agreement_report_shows_the_chosen_question_and_ignores_an_unknown_one():
    chosen = forms.agreement_report(PAYLOAD, [QUALITY, STARS], "stars")
    unknown = forms.agreement_report(PAYLOAD, [QUALITY, STARS], "<script>")

    assert chosen["confusion"]["key"] == "stars"
    assert chosen["confusion"]["categories"] == ["1", "2"]
    assert unknown["confusion"]["key"] == "quality"


def test_the_agreement_report_caps_the_pairs_and_survives_an_empty_snapshot():
    assert [p["n_items"] for p in forms.agreement_report(PAYLOAD, [QUALITY], None, pairs_shown=1)["pairs"]] == [30]
    assert forms.agreement_report({}, [QUALITY], "quality") == {
        "questions": [],
        "pairs": [],
        "n_pairs": 0,
        "confusion": None,
        "keys": [],
    }
