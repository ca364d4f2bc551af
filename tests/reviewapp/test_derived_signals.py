"""reviewapp.derived_signals on hand-made transcripts: each signal found and not found, the
edge cases, hostile text, and the work caps on huge inputs. Pure: no database."""

from __future__ import annotations

import pytest

from reviewapp import derived_signals as ds
from reviewapp.models import SignalKind


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def kinds(messages, **kw):
    return {f.kind: (f.turn, f.evidence) for f in ds.derive(messages, **kw)}


def test_the_kinds_are_the_models_choices():
    assert set(ds.KINDS) == set(SignalKind.values)


# --- rephrased ---------------------------------------------------------------------------------


def test_a_repeated_question_in_other_words_is_rephrased_at_the_later_turn():
    found = kinds([user("How do I reset my password?"), bot("Click 'forgot'."), user("how can i reset my password")])
    assert found[ds.REPHRASED] == (2, "how can i reset my password")


def test_a_repeat_with_words_added_is_rephrased_and_an_ok_in_between_does_not_break_it():
    found = kinds(
        [user("I want a refund"), bot("Why?"), user("ok"), bot("..."), user("I want a refund for my broken order")]
    )
    assert found[ds.REPHRASED][0] == 4


def test_different_questions_are_not_rephrased():
    found = kinds(
        [user("What is the baggage allowance?"), bot("23 kg."), user("Can I change my seat to an aisle?"), bot("Yes.")]
    )
    assert ds.REPHRASED not in found


def test_trivial_turns_are_never_a_rephrase():
    found = kinds([user("yes please"), bot("Done."), user("yes please"), bot("Done."), user("ok"), user("ok")])
    assert ds.REPHRASED not in found


def test_only_user_turns_are_compared():
    found = kinds([user("Where is my parcel today?"), bot("Where is my parcel today?"), user("Thanks, bye")])
    assert ds.REPHRASED not in found


# --- frustration -------------------------------------------------------------------------------


def test_shouting_and_repeated_punctuation_are_frustration_with_the_turn_and_evidence():
    assert kinds([user("hi"), bot("hello"), user("THIS IS USELESS")])[ds.FRUSTRATION] == (2, "THIS IS USELESS")
    assert kinds([user("where is my refund???")])[ds.FRUSTRATION][1] == "where is my refund???"
    assert kinds([user("come on!!!")])[ds.FRUSTRATION][0] == 0


def test_phrases_and_swearing_match_case_insensitively_on_word_boundaries():
    # Any whitespace between a phrase's words; the evidence collapses it.
    assert kinds([user("Honestly this is Not \n  Helpful at all")])[ds.FRUSTRATION][1] == (
        "Honestly this is Not Helpful at all"
    )
    assert ds.FRUSTRATION in kinds([user("wtf is going on")])
    # Inside other words: "scrap" holds "crap", "Useless" is not in "uselessness"... nor ids.
    assert ds.FRUSTRATION not in kinds([user("please scrap my old booking"), user("the uselessness metric")])


def test_acronyms_and_single_exclamations_are_not_frustration():
    found = kinds(
        [user("My PIN for the ATM at JFK does not work!"), bot("Sorry."), user("Is it the NASA API? Thanks!")]
    )
    assert ds.FRUSTRATION not in found


def test_a_projects_own_terms_add_to_the_defaults_and_are_text_not_patterns():
    messages = [user("the app keeps crashing, what a lemon"), user("a.b")]
    assert ds.FRUSTRATION not in kinds(messages)
    assert kinds(messages, frustration_terms=["lemon"])[ds.FRUSTRATION][0] == 0
    # A term is escaped: "a.b" matches only "a.b", and a term with regex syntax is harmless.
    assert ds.FRUSTRATION not in kinds([user("aab")], frustration_terms=["a.b", "(x+)+$", "[", "\\"])
    assert kinds([user("a.b")], frustration_terms=["a.b"])[ds.FRUSTRATION][0] == 0


def test_the_first_frustrated_turn_is_the_one_reported():
    found = kinds([user("fine"), user("this is ridiculous"), user("I HATE THIS SERVICE!!!")])
    assert found[ds.FRUSTRATION] == (1, "this is ridiculous")


# --- asked for a human ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human please",
        "let me speak with a real person",
        "connect me to an agent",
        "I want a representative",
        "transfer me to your supervisor now",
        "is there a live agent",
    ],
)
def test_asking_for_a_human(text):
    assert kinds([bot("Hi!"), user(text)])[ds.ASKED_FOR_HUMAN][0] == 1


@pytest.mark.parametrize(
    "text", ["How human-like is your voice?", "I talked about my trip. Person of the year?", "the agent fee is $5"]
)
def test_not_asking_for_a_human(text):
    assert ds.ASKED_FOR_HUMAN not in kinds([user(text), bot("ok")])


# --- gave up -------------------------------------------------------------------------------------


def test_the_users_last_turn_unanswered_is_gave_up():
    found = kinds([user("Where is my bag?"), bot("Checking."), user("Hello? Anyone there?")])
    assert found[ds.GAVE_UP] == (2, "Hello? Anyone there?")


def test_an_answered_last_turn_or_a_goodbye_is_not_gave_up():
    assert ds.GAVE_UP not in kinds([user("Where is my bag?"), bot("In Paris.")])
    assert ds.GAVE_UP not in kinds([user("Where is my bag?"), bot("In Paris."), user("ok thanks")])
    # A tool result or a bare tool call is not an answer; assistant text after them is.
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "f"}}]}
    assert ds.GAVE_UP in kinds([user("Where is my bag?"), call, {"role": "tool", "content": "{}"}])
    assert ds.GAVE_UP not in kinds([user("Where is my bag?"), call, {"role": "tool", "content": "{}"}, bot("Paris")])


# --- skipping, shapes, hostile and huge inputs ------------------------------------------------


def test_kinds_the_agent_sent_are_not_derived():
    messages = [user("talk to a human"), bot("..."), user("talk to a human now")]
    assert set(kinds(messages)) == {ds.REPHRASED, ds.ASKED_FOR_HUMAN, ds.GAVE_UP}
    assert set(kinds(messages, skip={ds.REPHRASED, ds.ASKED_FOR_HUMAN})) == {ds.GAVE_UP}


def test_odd_shapes_are_ignored_not_fatal():
    messages = [
        "not a dict",
        None,
        {"role": "user"},
        {"role": "user", "content": [{"type": "image_url"}, {"type": "text", "text": "THIS IS USELESS"}, 5]},
        {"role": "user", "content": {"text": "x"}},
    ]
    assert kinds(messages)[ds.FRUSTRATION] == (3, "THIS IS USELESS")
    assert ds.derive([]) == []


def test_evidence_is_short_plain_text_without_control_characters():
    hostile = "<script>alert(1)</script>\x00\x07 " + "x" * 500 + " THIS IS USELESS"
    [finding] = ds.derive([user(hostile)], skip={ds.GAVE_UP, ds.REPHRASED, ds.ASKED_FOR_HUMAN})
    assert len(finding.evidence) <= ds.EVIDENCE_CHARS
    assert "\x00" not in finding.evidence and "\x07" not in finding.evidence
    assert finding.evidence.endswith("THIS IS USELESS")


def test_a_2_mb_message_is_read_only_up_to_the_text_cap():
    # Frustration sits beyond the cap: not seen, because only MAX_TEXT_CHARS are read.
    huge = "a " * 1_000_000 + "THIS IS USELESS"
    assert len(huge) > 2_000_000
    assert ds.FRUSTRATION not in kinds([user(huge), bot("ok")])
    assert len(ds.text_of(user(huge))) == ds.MAX_TEXT_CHARS
    parts = [{"type": "text", "text": "y" * 100_000}] * 1000
    assert len(ds.text_of({"role": "user", "content": parts})) <= ds.MAX_TEXT_CHARS
    # Hostile shapes for the patterns, at 2 MB each: they finish (linear patterns, capped input).
    for text in ("A" * 2_000_000, "AB " * 700_000 + "x", "!?" * 1_000_000, "talk " + " " * 2_000_000):
        ds.derive([user(text), user(text)], frustration_terms=[f"term{i}" for i in range(ds.MAX_TERMS)])


def test_10000_turns_look_only_at_the_last_turns():
    early = [user("I WANT A HUMAN RIGHT NOW"), bot("...")]
    calm = [m for i in range(5_000) for m in (user(f"question {i} about flight {i * 7}"), bot("answer"))]
    messages = early + calm
    assert len(messages) > 10_000
    found = kinds(messages)
    # The shouting and the ask in the first turn are outside the last MAX_TURNS: not read.
    assert ds.FRUSTRATION not in found and ds.ASKED_FOR_HUMAN not in found
    # Indices still count from the start of the whole transcript.
    last = [*messages, user("talk to a human")]
    assert kinds(last)[ds.ASKED_FOR_HUMAN][0] == len(messages)
    assert kinds(last)[ds.GAVE_UP][0] == len(messages)


def test_terms_normalise():
    assert ds.terms_normalise(["  Lemon ", "lemon", "Total   JUNK", "", "\x00"]) == ["lemon", "total junk"]
