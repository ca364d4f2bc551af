"""Signals at ingest: derived ones stored next to what the agent sent, shown by the detail API
and filtered by the list; a project's frustration terms; the badges on the transcript page."""

from __future__ import annotations

from django.test import Client

from reviewapp import derived_signals, selectors, services
from reviewapp.models import AuditEvent, ConversationSignal, Project

URL = "/api/v1/conversations"


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


ANGRY = [user("Where is my refund?"), bot("Let me check."), user("where is my refund??"), bot("Soon."),
         user("THIS IS USELESS"), bot("Sorry."), user("let me talk to a real person")]  # fmt: skip
CALM = [user("What is the baggage allowance?"), bot("23 kg.")]


def _ingest(client, *items):
    response = client.post(URL, {"conversations": list(items)}, format="json")
    assert response.status_code == 201, response.content
    return [r["id"] for r in response.json()["results"]]


def _stored(conversation_id):
    return sorted(
        ConversationSignal.objects.filter(conversation_id=conversation_id).values_list(
            "kind", "source", "turn", "evidence"
        )
    )


def test_ingest_stores_derived_signals_with_turn_and_evidence(agent_client, project):
    angry, calm = _ingest(agent_client, {"external_id": "a", "messages": ANGRY}, {"external_id": "c", "messages": CALM})

    assert _stored(angry) == [
        ("asked_for_human", "derived", 6, "let me talk to a real person"),
        ("frustration", "derived", 4, "THIS IS USELESS"),
        ("gave_up", "derived", 6, "let me talk to a real person"),
        ("rephrased", "derived", 2, "where is my refund??"),
    ]
    assert _stored(calm) == []
    assert set(ConversationSignal.objects.values_list("project_id", flat=True)) == {project.pk}


def test_what_the_agent_sent_is_recorded_as_agent_and_not_derived_again(agent_client):
    feedback = {"user_rephrased": True, "escalated_by_user": True}
    [cid] = _ingest(agent_client, {"external_id": "a", "messages": ANGRY, "feedback": feedback})

    assert _stored(cid) == [
        ("asked_for_human", "agent", None, ""),
        ("frustration", "derived", 4, "THIS IS USELESS"),
        ("gave_up", "derived", 6, "let me talk to a real person"),
        ("rephrased", "agent", None, ""),
    ]


def test_a_duplicate_adds_agent_signals_once_and_derives_nothing_new(agent_client):
    [cid] = _ingest(agent_client, {"external_id": "c", "messages": CALM})
    again = {"external_id": "c", "messages": ANGRY, "feedback": {"escalated_by_user": True}}
    _ingest(agent_client, again)
    _ingest(agent_client, {**again, "feedback": {"escalated_by_user": True, "comment": "again"}})

    assert _stored(cid) == [("asked_for_human", "agent", None, "")]


def test_the_detail_api_shows_signals_and_the_list_filters_on_them(agent_client):
    angry, calm = _ingest(
        agent_client,
        {"external_id": "a", "messages": ANGRY},
        {"external_id": "c", "messages": CALM, "feedback": {"user_rephrased": True}},
    )

    body = agent_client.get(f"{URL}/{angry}").json()
    assert body["signals"][:2] == [
        {"kind": "rephrased", "source": "derived", "turn": 2, "evidence": "where is my refund??"},
        {"kind": "frustration", "source": "derived", "turn": 4, "evidence": "THIS IS USELESS"},
    ]
    assert agent_client.get(f"{URL}/{calm}").json()["signals"] == [
        {"kind": "rephrased", "source": "agent", "turn": None, "evidence": ""}
    ]

    def listed(query):
        return [r["id"] for r in agent_client.get(f"{URL}?{query}").json()["results"]]

    assert listed("signal=frustration") == [angry]
    assert listed("signal=rephrased") == [calm, angry]
    assert listed("signal=rephrased&signal_source=derived") == [angry]
    bad = agent_client.get(f"{URL}?signal=<script>")
    assert bad.status_code == 400 and "signal" in bad.json()["errors"]


def test_signals_for_conversations_is_scoped_to_the_project(agent_client, project, other_project):
    [angry] = _ingest(agent_client, {"external_id": "a", "messages": ANGRY})

    found = selectors.signals_for_conversations(project=project, conversation_ids=[angry, angry, 10**12])
    assert [s.kind for s in found[angry]] == ["rephrased", "frustration", "asked_for_human", "gave_up"]
    assert selectors.signals_for_conversations(project=other_project, conversation_ids=[angry]) == {}


def test_a_projects_frustration_terms_apply_to_later_ingests(agent_client, project):
    services.project_frustration_terms_set(project=project, terms=["  Total LEMON ", "lemon"])
    project.refresh_from_db()
    assert project.frustration_terms == ["total lemon", "lemon"]
    [cid] = _ingest(agent_client, {"external_id": "l", "messages": [user("this car is a total lemon"), bot("?")]})

    assert _stored(cid) == [("frustration", "derived", 0, "this car is a total lemon")]


def test_the_terms_endpoint_admins_write_members_read_others_404(api_client_for, project, other_org):
    url = f"/api/v1/projects/{project.pk}/frustration-terms"
    admin = api_client_for("admin")

    response = admin.put(url, {"frustration_terms": ["Lemon", "rip-off"]}, format="json")
    assert response.status_code == 200
    assert response.json()["frustration_terms"] == ["lemon", "rip-off"]
    assert AuditEvent.objects.filter(kind="project.frustration_terms_set").count() == 1
    annotator = api_client_for("annotator")
    read = annotator.get(url).json()
    assert read["frustration_terms"] == ["lemon", "rip-off"]
    assert read["default_terms"] == list(derived_signals.DEFAULT_FRUSTRATION_TERMS)

    for role in ("annotator", "engineer", "approver"):
        assert api_client_for(role).put(url, {"frustration_terms": []}, format="json").status_code == 403
    outsider = api_client_for("admin", organization=other_org)
    assert outsider.get(url).status_code == 404
    assert outsider.put(url, {"frustration_terms": []}, format="json").status_code == 404
    assert Project.objects.get(pk=project.pk).frustration_terms == ["lemon", "rip-off"]


def test_the_terms_endpoint_refuses_bad_input_naming_the_field(api_client_for, project):
    url = f"/api/v1/projects/{project.pk}/frustration-terms"
    admin = api_client_for("admin")
    cases = {
        "frustration_terms": [{"frustration_terms": "lemon"}, {"frustration_terms": ["x"] * 101}, {}],
        "frustration_terms[1]": [
            {"frustration_terms": ["ok", "x" * 61]},
            {"frustration_terms": ["ok", "!!!"]},
            {"frustration_terms": ["ok", 5]},
            {"frustration_terms": ["ok", "a\x00b"]},
        ],
    }
    for field, bodies in cases.items():
        for body in bodies:
            response = admin.put(url, body, format="json")
            assert response.status_code == 400, body
            assert field in response.json()["errors"], (body, response.json())
    assert Project.objects.get(pk=project.pk).frustration_terms == []
    assert not AuditEvent.objects.filter(kind="project.frustration_terms_set").exists()


def test_the_conversation_page_shows_escaped_signal_badges(agent_client, member):
    hostile = '<img src=x onerror=alert(1)> "THIS IS USELESS"'
    [cid] = _ingest(agent_client, {"external_id": "h", "messages": [user(hostile), bot("ok")]})
    client = Client()
    client.force_login(member("engineer"))

    html = client.get(f"/conversations/{cid}/").content.decode()

    assert 'data-signal="frustration" data-source="derived"' in html
    assert "Derived: frustration (" in html and '<a href="#turn-0">turn 0</a>' in html
    assert "&lt;img src=x onerror=alert(1)&gt; &quot;THIS IS USELESS&quot;" in html
    assert "<img src=x" not in html
