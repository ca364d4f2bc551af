"""Sampling rules on signals: `{"if": {"signal": "frustration"}}`, any source or one."""

from __future__ import annotations

import pytest
from django.test import Client
from pydantic import ValidationError

from labeling import sampling
from labeling import services as labeling_services
from labeling.models import QueueItem
from labeling.services import sampling as sampling_service
from reviewapp import services as core_services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.models import ConversationSignal, SignalKind, SignalSource
from tests.labeling.factories import add_items, make_queue

ANGRY = [{"role": "user", "content": "THIS IS USELESS"}, {"role": "assistant", "content": "Sorry."}]
CALM = [{"role": "user", "content": "What is the baggage allowance?"}, {"role": "assistant", "content": "23 kg."}]


def facts(**kw):
    return sampling.ConversationFacts(id=1, external_id="x", **kw)


def test_the_signal_condition_matches_any_source_or_the_one_named():
    derived = facts(signals=frozenset({("frustration", "derived")}))
    agent = facts(signals=frozenset({("rephrased", "agent")}))
    frustration = sampling.RuleCondition(signal="frustration")
    only_agent = sampling.RuleCondition(signal="frustration", signal_source="agent")

    assert sampling.condition_matches(frustration, derived)
    assert not sampling.condition_matches(frustration, agent)
    assert not sampling.condition_matches(frustration, facts())
    assert not sampling.condition_matches(only_agent, derived)
    assert sampling.condition_matches(sampling.RuleCondition(signal="rephrased", signal_source="agent"), agent)
    [rule] = sampling.rules_parse([{"rate": 1, "if": {"signal": "gave_up"}}])
    assert rule.strategy() == "signal" and sampling.rules_use_signals([rule])


def test_the_condition_is_validated_and_matches_the_models_choices():
    literal = sampling.RuleCondition.model_fields["signal"].annotation.__args__[0].__args__
    assert set(literal) == set(SignalKind.values)
    assert set(sampling.RuleCondition.model_fields["signal_source"].annotation.__args__[0].__args__) == set(
        SignalSource.values
    )
    for bad in ({"signal": "angry"}, {"signal": "frustration", "signal_source": "human"}, {"signal_source": "agent"}):
        with pytest.raises(ValidationError):
            sampling.rules_parse([{"rate": 1, "if": bad}])


def test_ingest_samples_conversations_with_the_signal(project, django_capture_on_commit_callbacks):
    queue = make_queue(
        project,
        sampling=({"rate": 0.0}, {"rate": 1.0, "if": {"signal": "frustration"}, "name": "angry"}),
        backfill_days=0,
    )
    agent_only = make_queue(
        project,
        name="agent said",
        sampling=({"rate": 1.0, "if": {"signal": "frustration", "signal_source": "agent"}},),
        backfill_days=0,
    )
    with django_capture_on_commit_callbacks(execute=True):
        core_services.conversations_ingest(
            project=project,
            conversations=[
                ConversationIn.model_validate({"external_id": "angry", "messages": ANGRY}),
                ConversationIn.model_validate({"external_id": "calm", "messages": CALM}),
            ],
        )

    item = QueueItem.objects.get(queue=queue)
    assert (item.conversation.external_id, item.sampling_rule, item.sampling_strategy) == ("angry", "angry", "signal")
    assert not QueueItem.objects.filter(queue=agent_only).exists()


def test_signals_are_loaded_in_one_query_and_only_when_a_rule_asks(project, django_assert_num_queries):
    ids = [
        r.id
        for r in core_services.conversations_ingest(
            project=project,
            conversations=[
                ConversationIn.model_validate({"external_id": f"c{i}", "messages": ANGRY if i % 2 else CALM})
                for i in range(20)
            ],
        )
    ]
    plain = make_queue(project, sampling=({"rate": 1.0},), backfill_days=0)
    facts = sampling_service._facts_for(ids)
    with django_assert_num_queries(0):
        assert sampling_service._with_signals(facts, [plain]) is facts
    asks = make_queue(project, name="asks", sampling=({"rate": 1.0, "if": {"signal": "gave_up"}},), backfill_days=0)
    with django_assert_num_queries(1):
        loaded = sampling_service._with_signals(facts, [plain, asks])
    by_id = {f.external_id: f.signals for f in loaded}
    assert by_id["c1"] == frozenset({("frustration", "derived")})
    assert by_id["c0"] == frozenset()


def test_the_labeling_page_shows_the_signals_escaped(project, member):
    queue = make_queue(project)
    [item] = add_items(queue, 1, messages=ANGRY)
    ConversationSignal.objects.create(
        conversation=item.conversation,
        project=project,
        kind="frustration",
        source="derived",
        turn=0,
        evidence='<b onmouseover=alert(1)>"THIS IS USELESS"',
    )
    worker = member("annotator")
    labeling_services.item_claim(queue=queue, user=worker)
    client = Client()
    client.force_login(worker)

    html = client.get(f"/labeling/queues/{queue.pk}/work").content.decode()

    assert f'Derived: frustration (<a href="#i{item.pk}-turn-0">turn 0</a>: ' in html
    assert "&lt;b onmouseover=alert(1)&gt;&quot;THIS IS USELESS&quot;" in html
    assert "<b onmouseover" not in html
