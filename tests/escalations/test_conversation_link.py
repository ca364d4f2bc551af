"""An action names its conversation by external_id; the conversation may be stored before the
action or after it, and the link is made either way."""

from __future__ import annotations

from escalations import services
from escalations.models import Action
from reviewapp import services as core_services
from reviewapp.ingest_schemas import ConversationIn
from tests.escalations.factories import request, request_body
from tests.factories import ConversationFactory, ProjectFactory, conversation_payload


def _ingest(project, *external_ids):
    return core_services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(conversation_payload(e)) for e in external_ids]
    )


def test_a_conversation_stored_first_is_linked_when_the_action_arrives(agent_client, project):
    conversation = ConversationFactory(project=project, external_id="conv-812")

    body = agent_client.post("/api/v1/actions", request_body(), format="json").json()

    assert body["conversation_id"] == conversation.pk


def test_a_conversation_arriving_later_is_linked_then(agent_client, project):
    first = request(project, request_body("a-1", conversation_external_id="conv-812"))
    second = request(project, request_body("a-2", conversation_external_id="conv-812"))
    request(project, request_body("a-3", conversation_external_id="conv-999"))
    assert first.conversation_id is None

    results = _ingest(project, "conv-812", "conv-000")

    linked = {a.external_id: a.conversation_id for a in Action.objects.all()}
    assert linked == {"a-1": results[0].id, "a-2": results[0].id, "a-3": None}
    assert agent_client.get(f"/api/v1/actions/{second.pk}").json()["conversation_id"] == results[0].id


def test_a_conversation_of_another_project_is_never_linked(project, org):
    other = ProjectFactory(organization=org, slug="sales")
    ConversationFactory(project=other, external_id="conv-812")
    action = request(project)
    assert action.conversation_id is None

    _ingest(other, "conv-777")
    _ingest(project, "conv-000")

    action.refresh_from_db()
    assert action.conversation_id is None


def test_an_action_without_a_conversation_is_left_alone(project):
    action = request(project, request_body(conversation_external_id=""))
    ConversationFactory(project=project, external_id="")

    _ingest(project, "conv-1")

    action.refresh_from_db()
    assert action.conversation_id is None


def test_linking_costs_one_probe_when_no_action_waits(project, django_assert_num_queries):
    ids = [c.id for c in _ingest(project, "conv-1", "conv-2")]
    request(project, request_body(conversation_external_id="conv-1"))  # linked on arrival

    with django_assert_num_queries(1):
        assert services.actions_link_conversations(project_id=project.pk, conversation_ids=ids) == 0


def test_linking_is_one_update_for_the_batch(project, django_assert_num_queries):
    for i in range(5):
        request(project, request_body(f"a-{i}", conversation_external_id=f"conv-{i}"))
    ids = [ConversationFactory(project=project, external_id=f"conv-{i}").pk for i in range(5)]

    with django_assert_num_queries(2):  # is anything waiting?, the UPDATE
        assert services.actions_link_conversations(project_id=project.pk, conversation_ids=ids) == 5
    assert sorted(Action.objects.values_list("conversation_id", flat=True)) == sorted(ids)
