"""evaluation/dataset_items.py: keys, splits, hashes, the turn under test, promotion rules and
version comparison, without a database."""

from __future__ import annotations

import hashlib
from collections import Counter

from evaluation import dataset_items as di

MESSAGES = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "Where is my refund?"},
    {"role": "assistant", "content": "Issued Monday."},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "You're welcome."},
]


def test_the_key_is_the_documented_hash_of_the_external_id():
    assert di.key_for_conversation("conv-1") == hashlib.sha256(b"conversation:conv-1").hexdigest()[:16]
    assert di.key_for_conversation("conv-1") != di.key_for_conversation("conv-2")


def test_splits_are_stable_and_near_80_10_10():
    keys = [di.key_for_conversation(f"c{i}") for i in range(5000)]
    first = [di.split_for(k) for k in keys]
    assert first == [di.split_for(k) for k in keys]
    counts = Counter(first)
    assert 0.77 < counts["train"] / 5000 < 0.83
    assert 0.08 < counts["dev"] / 5000 < 0.12
    assert 0.08 < counts["test"] / 5000 < 0.12


def test_content_hash_covers_content_not_lineage_and_ignores_key_order():
    fields = {"input_messages": MESSAGES[:2], "reference_output": None, "expected_labels": {"a": 1, "b": 2}}
    same = {"expected_labels": {"b": 2, "a": 1}, "reference_output": None, "input_messages": MESSAGES[:2]}
    assert di.content_hash("k", fields) == di.content_hash("k", same)
    assert di.content_hash("k", fields) == di.content_hash("k", {**fields, "lineage": {"label_ids": [1]}})
    assert di.content_hash("k", fields) != di.content_hash("k2", fields)
    assert di.content_hash("k", fields) != di.content_hash("k", {**fields, "critical": True})
    expected = hashlib.sha256(
        b'{"critical":null,"expected_labels":{"a":1,"b":2},"input_messages":[{"content":"Be kind.","role":"system"},'
        b'{"content":"Where is my refund?","role":"user"}],"key":"k","reference_output":null,"split":null,"tags":null}'
    ).hexdigest()
    assert di.content_hash("k", fields) == expected


def test_version_hash_is_over_sorted_key_hash_lines():
    pairs = [("b", "h2"), ("a", "h1")]
    assert di.version_hash(pairs) == hashlib.sha256(b"a h1\nb h2\n").hexdigest()
    assert di.version_hash(reversed(pairs)) == di.version_hash(pairs)


def test_the_turn_under_test_is_the_last_assistant_turn():
    turn = di.turn_under_test(MESSAGES, {})
    assert turn.input_messages == MESSAGES[:4]
    assert turn.reference_output == {"role": "assistant", "content": "You're welcome."}
    assert turn.reference_source == "agent"


def test_a_turn_question_points_at_the_turn_under_test():
    turn = di.turn_under_test(MESSAGES, {"bad_turn": 2}, turn_questions=["bad_turn"])
    assert turn.input_messages == MESSAGES[:2]
    assert turn.reference_output == MESSAGES[2]
    # A user turn (or a bad index) is not a turn under test: the last assistant turn is.
    assert di.turn_under_test(MESSAGES, {"bad_turn": 1}, turn_questions=["bad_turn"]).input_messages == MESSAGES[:4]


def test_a_correction_replaces_the_reference():
    turn = di.turn_under_test(
        MESSAGES, {"corrected_answer": "Refunds take 5 days."}, text_questions=["corrected_answer"]
    )
    assert turn.input_messages == MESSAGES[:4]
    assert turn.reference_output == {"role": "assistant", "content": "Refunds take 5 days."}
    assert turn.reference_source == "correction"
    # Blank, or not a text question of the rubric: no correction.
    assert (
        di.turn_under_test(MESSAGES, {"corrected_answer": " "}, text_questions=["corrected_answer"]).reference_source
        == "agent"
    )
    assert di.turn_under_test(MESSAGES, {"corrected_answer": "x"}).reference_source == "agent"


def test_no_assistant_turn_means_no_reference():
    turn = di.turn_under_test(MESSAGES[:2], {})
    assert (turn.input_messages, turn.reference_output, turn.reference_source) == (MESSAGES[:2], None, "none")


def test_tags_are_bounded_and_deduplicated():
    assert di.clean_tags(["a", "b", "a"]) == (["a", "b"], None)
    assert di.clean_tags("a")[1] == "Send a list of strings."
    assert di.clean_tags(["x"] * 21)[1] == "At most 20 tags."
    assert di.clean_tags(["x" * 65])[1] == "A tag has at most 64 characters."
    assert di.clean_tags(["a\x00"])[1] == "Tags hold no control characters."
    assert di.clean_tags([""])[1] == "Each tag is a non-empty string."


def test_rules_parse_names_the_path_of_each_problem():
    rules, errors = di.rules_parse(
        [
            {"queue": "QA", "if": {"answers": {"quality": "good"}, "agreement": "unanimous"}, "tags": ["x"]},
            {"queue": "", "critical": "yes"},
            {"queue": "QA", "if": {"agreement": "most", "answers": {"Bad Key": 1}}},
            {"queue": "QA", "when": {}},
            "rule",
        ]
    )
    assert rules == [di.Rule(queue="QA", answers={"quality": "good"}, agreement="unanimous", tags=["x"])]
    assert errors == {
        "promotion_rules[1].queue": ["Name a queue (1 to 200 characters)."],
        "promotion_rules[1].critical": ["Send true or false."],
        "promotion_rules[2].if.answers.Bad Key": ["A question key and a plain answer value."],
        "promotion_rules[2].if.agreement": ["One of: any, unanimous."],
        "promotion_rules[3]": ["Unknown fields: when."],
        "promotion_rules[4]": ["Send an object."],
    }
    assert di.rules_parse({})[1] == {"promotion_rules": ["Send a list of rules."]}
    assert di.rules_parse([{"queue": "q"}] * 51)[1] == {"promotion_rules": ["At most 50 rules."]}
    assert di.rules_parse([{"queue": "q", "if": {"answers": {"a": float("nan")}}}])[1] == {
        "promotion_rules[0].if.answers.a": ["A question key and a plain answer value."]
    }


def test_rule_matching_answers_and_unanimity():
    rule = di.Rule(queue="QA", answers={"quality": "good"}, agreement="unanimous")
    final = {"quality": "good", "notes": "fine"}
    assert di.rule_matches(
        rule, final_answers=final, label_answers=[{"quality": "good"}, {"quality": "good", "notes": "x"}]
    )
    assert not di.rule_matches(rule, final_answers=final, label_answers=[{"quality": "good"}, {"quality": "bad"}])
    assert not di.rule_matches(rule, final_answers={"quality": "bad"}, label_answers=[{"quality": "bad"}])
    assert not di.rule_matches(rule, final_answers=final, label_answers=[])
    anyone = di.Rule(queue="QA", answers={"quality": "good"})
    assert di.rule_matches(anyone, final_answers=final, label_answers=[{"quality": "good"}, {"quality": "bad"}])
    # Unanimous with no answers named: on every question of the final answer.
    every = di.Rule(queue="QA", agreement="unanimous")
    assert not di.rule_matches(every, final_answers=final, label_answers=[{"quality": "good", "notes": "x"}])
    assert di.rule_matches(every, final_answers=final, label_answers=[dict(final), dict(final)])


def test_compare_by_key_with_the_fields_that_changed():
    a = {
        "k1": {"content_hash": "1", "critical": False, "tags": []},
        "k2": {"content_hash": "2", "critical": False, "tags": ["x"]},
        "k3": {"content_hash": "3"},
    }
    b = {
        "k1": {"content_hash": "1", "critical": False, "tags": []},
        "k2": {"content_hash": "2b", "critical": True, "tags": ["y"]},
        "k4": {"content_hash": "4"},
    }
    assert di.compare(a, b) == {
        "added": ["k4"],
        "removed": ["k3"],
        "changed": [{"key": "k2", "fields": ["critical", "tags"]}],
    }
