"""Browser pages: login, home per role, the organization switcher, conversations, API keys, and
escaping of hostile content in every field a page shows."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from reviewapp import services
from reviewapp.ingest_schemas import ConversationIn
from reviewapp.middleware import SESSION_KEY
from reviewapp.models import ApiKey, Membership
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, ProjectFactory, UserFactory, conversation_payload


def _ingest(project, external_id: str, **fields: object) -> int:
    payload = conversation_payload(external_id, **fields)
    [result] = services.conversations_ingest(project=project, conversations=[ConversationIn.model_validate(payload)])
    return result.id


# --- login and logout ---------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(db):
    for path in ["/", "/conversations/", "/conversations/1/", "/settings/api-keys/"]:
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/login/?next={path}"


def test_the_login_page_renders(db):
    response = Client().get("/login/")

    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content


def test_logging_in_lands_on_home(member, org):
    member("engineer", username="alice")
    client = Client()

    response = client.post("/login/", {"username": "alice", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_password_shows_the_form_again(member, org):
    member("engineer", username="alice")
    client = Client()

    response = client.post("/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert b"Please enter a correct username and password." in response.content
    assert client.get("/").status_code == 302


def test_logging_out_ends_the_session(browser_for):
    client = browser_for("engineer")

    response = client.post("/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_a_user_in_no_organization_is_told_so(db):
    client = Client()
    client.force_login(UserFactory(username="loner"))

    response = client.get("/")

    assert response.status_code == 403
    assert b"No organization yet" in response.content
    assert client.get("/conversations/").status_code == 403


# --- home per role ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["annotator", "approver"])
def test_home_for_people_who_do_not_read_conversations_shows_no_conversations(browser_for, project, role):
    _ingest(project, "private-conversation")
    client = browser_for(role)

    response = client.get("/")

    assert response.status_code == 200
    assert response.context["role"] == role
    assert "stats" not in response.context
    assert "recent" not in response.context
    assert "members" not in response.context
    html = response.content.decode()
    assert "private-conversation" not in html
    assert 'href="/conversations/"' not in html
    assert 'href="/settings/api-keys/"' not in html


def test_home_for_an_engineer_shows_stats_and_recent_conversations(browser_for, project):
    _ingest(project, "c-up", feedback={"rating": "up"})
    _ingest(project, "c-down", feedback={"rating": "down", "user_rephrased": True})
    client = browser_for("engineer")

    response = client.get("/")

    assert response.status_code == 200
    assert response.context["stats"] == {"conversations": 2, "thumbs_down": 1, "rephrased": 1, "projects": 1}
    assert [c.external_id for c, _ in response.context["recent"]] == ["c-down", "c-up"]
    assert response.context["recent"][0][1] == "I want a refund for booking ABC123."
    assert "members" not in response.context
    html = response.content.decode()
    assert 'href="/conversations/"' in html
    assert 'href="/settings/api-keys/"' not in html


def test_home_for_an_admin_shows_members_and_audit_events(browser_for, project):
    client = browser_for("admin", username="root-admin")
    services.api_key_create(project=project, name="prod", created_by=client.user)

    response = client.get("/")

    assert [m.user.username for m in response.context["members"]] == ["root-admin"]
    assert [e.kind for e in response.context["events"]] == ["api_key.created"]
    assert 'href="/settings/api-keys/"' in response.content.decode()


def test_home_counts_only_the_current_organization(browser_for, project, other_project):
    _ingest(project, "ours")
    _ingest(other_project, "theirs")

    response = browser_for("engineer").get("/")

    assert response.context["stats"]["conversations"] == 1
    assert "theirs" not in response.content.decode()


# --- organization switcher --------------------------------------------------------------------


@pytest.fixture
def two_org_user(org, other_org, member):
    user = member("engineer", username="multi")
    MembershipFactory(user=user, organization=other_org, role="annotator")
    client = Client()
    client.force_login(user)
    return client


def test_a_member_of_several_organizations_starts_in_the_first(two_org_user):
    response = two_org_user.get("/")

    assert response.context["current_membership"].organization.slug == "acme"
    html = response.content.decode()
    assert '<option value="acme" selected>' in html
    assert '<option value="globex" >' in html


def test_switching_organization_changes_role_and_data(two_org_user, project, other_project):
    _ingest(project, "acme-conv")

    response = two_org_user.post("/org/switch", {"organization": "globex"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    home = two_org_user.get("/")
    assert (home.context["current_membership"].organization.slug, home.context["role"]) == ("globex", "annotator")
    assert two_org_user.get("/conversations/").status_code == 403

    two_org_user.post("/org/switch", {"organization": "acme"})
    assert two_org_user.get("/").context["role"] == "engineer"
    assert two_org_user.get("/conversations/").status_code == 200


@pytest.mark.parametrize("slug", ["nope", "initech"])
def test_switching_to_an_organization_you_are_not_in_is_404(two_org_user, slug):
    from tests.factories import OrganizationFactory

    OrganizationFactory(slug="initech")
    before = two_org_user.session.get(SESSION_KEY)

    response = two_org_user.post("/org/switch", {"organization": slug})

    assert response.status_code == 404
    assert two_org_user.session.get(SESSION_KEY) == before
    assert two_org_user.get("/").context["current_membership"].organization.slug == "acme"


def test_switching_needs_post(two_org_user):
    assert two_org_user.get("/org/switch?organization=globex").status_code == 405


def test_losing_the_remembered_organization_falls_back_to_another(two_org_user, other_org):
    two_org_user.post("/org/switch", {"organization": "globex"})

    Membership.objects.filter(organization=other_org).delete()

    assert two_org_user.get("/").context["current_membership"].organization.slug == "acme"


# --- conversation list and detail ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["annotator", "approver"])
def test_conversation_pages_are_closed_to_roles_without_read_access(browser_for, project, role):
    conversation_id = _ingest(project, "c")
    client = browser_for(role)

    assert client.get("/conversations/").status_code == 403
    assert client.get(f"/conversations/{conversation_id}/").status_code == 403


def test_the_list_shows_only_the_current_organization_newest_first(browser_for, project, other_project):
    _ingest(project, "first")
    _ingest(project, "second")
    _ingest(other_project, "foreign")

    response = browser_for("engineer").get("/conversations/")

    assert response.status_code == 200
    assert [c.external_id for c, _ in response.context["rows"]] == ["second", "first"]
    assert "foreign" not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("agent_version=v1", ["a"]),
        ("tag=vip", ["b"]),
        ("feedback_rating=down", ["b"]),
        ("rephrased=on", ["b"]),
        ("project=sales", ["c"]),
        ("judge=tone-judge", ["c"]),
        ("criterion=correctness&score_max=0.5", ["a"]),
        ("occurred_after=2026-02-01", ["c", "b"]),
        ("project=unknown", ["c", "b", "a"]),
    ],
)
def test_the_list_filters(browser_for, project, query, expected):
    sales = ProjectFactory(organization=project.organization, slug="sales")
    low = [{"judge": "gpt-judge", "criterion": "correctness", "score": 0.2}]
    _ingest(project, "a", agent_version="v1", occurred_at="2026-01-01T00:00:00Z", judge_scores=low)
    _ingest(
        project,
        "b",
        tags=["vip"],
        occurred_at="2026-02-01T00:00:00Z",
        feedback={"rating": "down", "user_rephrased": True},
    )
    _ingest(
        sales,
        "c",
        occurred_at="2026-03-01T00:00:00Z",
        judge_scores=[{"judge": "tone-judge", "criterion": "tone", "label": "curt"}],
    )

    response = browser_for("engineer").get(f"/conversations/?{query}")

    assert [c.external_id for c, _ in response.context["rows"]] == expected


def test_the_list_pages_with_load_more_and_htmx_gets_only_rows(browser_for, project):
    services.conversations_ingest(
        project=project,
        conversations=[
            ConversationIn.model_validate({"external_id": f"c{i:02d}", "messages": [{"role": "user", "content": "hi"}]})
            for i in range(51)
        ],
    )
    client = browser_for("engineer")

    first = client.get("/conversations/?tag=")
    assert len(first.context["rows"]) == 50
    assert first.context["rows"][-1][0].external_id == "c01"
    next_query = first.context["next_query"]
    assert next_query is not None

    more = client.get(f"/conversations/?{next_query}", HTTP_HX_REQUEST="true")

    assert [c.external_id for c, _ in more.context["rows"]] == ["c00"]
    assert more.context["next_query"] is None
    assert more.templates[0].name == "reviewapp/_conversation_rows.html"
    assert b"<html" not in more.content


def test_the_detail_page_shows_the_transcript(browser_for, project):
    conversation_id = _ingest(project, "ABC-1")

    response = browser_for("engineer").get(f"/conversations/{conversation_id}/")

    assert response.status_code == 200
    assert response.context["conversation"].pk == conversation_id
    turns = response.context["turns"]
    assert [t.role for t in turns] == ["system", "user", "assistant", "tool", "assistant"]
    assert [(c.id, c.name) for c in turns[2].tool_calls] == [("call_1", "lookup_booking")]
    assert turns[3].tool_call_id == "call_1"
    html = response.content.decode()
    assert html.count('<article class="turn') == 5
    assert "lookup_booking" in html
    assert "Your refund of $450 is on its way." in html


def test_the_detail_page_of_another_organizations_conversation_is_404(browser_for, other_project):
    foreign = _ingest(other_project, "foreign")

    response = browser_for("admin").get(f"/conversations/{foreign}/")

    assert response.status_code == 404
    assert b"foreign" not in response.content


# --- API keys page ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["annotator", "approver", "engineer"])
def test_the_api_keys_page_is_for_admins_only(browser_for, project, role):
    key = services.api_key_create(project=project, name="k").record
    client = browser_for(role)

    assert client.get("/settings/api-keys/").status_code == 403
    assert client.post("/settings/api-keys/", {"project": "support", "name": "mine"}).status_code == 403
    assert client.post(f"/settings/api-keys/{key.pk}/revoke").status_code == 403
    assert list(ApiKey.objects.values_list("name", "revoked_at")) == [("k", None)]


def test_an_admin_creates_a_key_and_sees_it_once(browser_for, project):
    client = browser_for("admin")

    response = client.post("/settings/api-keys/", {"project": "support", "name": "prod agent"})

    assert response.status_code == 200
    raw = response.context["issued"].raw
    key = ApiKey.objects.get()
    assert (key.name, key.project_id, key.created_by_id) == ("prod agent", project.pk, client.user.pk)
    assert raw in response.content.decode()
    again = client.get("/settings/api-keys/")
    assert again.context["issued"] is None
    assert raw not in again.content.decode()
    assert key.prefix in again.content.decode()


def test_a_key_for_another_organizations_project_cannot_be_created(browser_for, project, other_project):
    response = browser_for("admin").post("/settings/api-keys/", {"project": "shop", "name": "sneaky"})

    assert response.status_code == 200
    assert "project" in response.context["form"].errors
    assert ApiKey.objects.count() == 0


def test_an_admin_revokes_a_key_from_the_page(browser_for, agent_client):
    client = browser_for("admin")

    response = client.post(f"/settings/api-keys/{agent_client.api_key.pk}/revoke")

    assert response.status_code == 302
    assert response["Location"] == "/settings/api-keys/"
    assert ApiKey.objects.get().revoked_at is not None
    assert agent_client.get("/api/v1/conversations").status_code == 401


def test_revoking_another_organizations_key_from_the_page_is_404(browser_for, other_agent_client):
    foreign = ApiKey.objects.get()

    response = browser_for("admin").post(f"/settings/api-keys/{foreign.pk}/revoke")

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_revoking_needs_post(browser_for, agent_client):
    assert browser_for("admin").get(f"/settings/api-keys/{agent_client.api_key.pk}/revoke").status_code == 405
    assert ApiKey.objects.get().revoked_at is None


def test_forms_are_csrf_protected(member, org, project):
    user = member("admin", username="root-admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/settings/api-keys/", {"project": "support", "name": "k"})

    assert response.status_code == 403
    assert ApiKey.objects.count() == 0


# --- hostile content ----------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = "[x](javascript:alert(1))"
HOSTILE = f"{SCRIPT}{IMG}{LINK}"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _h(label: str) -> str:
    return f"{label}:{HOSTILE}"


class _Page(HTMLParser):
    """Every element, attribute and text node of a page, as a browser's parser would see them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.script_text: list[str] = []
        self._in_script = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        (self.script_text if self._in_script else self.text).append(data)


def _assert_inert(html: str) -> _Page:
    """No hostile markup became markup: no script, image or handler it could have brought."""
    assert SCRIPT not in html
    assert "<img" not in html.lower()
    assert "onerror=" not in html.lower().replace("onerror=alert(1)&gt;", "")
    page = _Page(html)
    for tag, attrs in page.elements:
        assert tag not in {"img", "svg", "iframe", "object", "embed"}, tag
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        for name, value in attrs.items():
            if name.startswith("on"):
                assert "alert" not in (value or ""), (tag, name, value)
            if name in {"href", "src", "action", "formaction"}:
                assert not (value or "").strip().lower().startswith("javascript:"), (tag, name, value)
    assert "alert" not in "".join(page.script_text)
    return page


@pytest.fixture
def hostile(org, project, agent_client):
    """A conversation with hostile text in every field the pages show, sent through the API."""
    org.name = _h("org-name")
    org.save(update_fields=["name"])
    project.name = _h("project-name")
    project.save(update_fields=["name"])
    payload = {
        "external_id": _h("external-id"),
        "messages": [
            {"role": "system", "content": _h("system-content")},
            {"role": "user", "content": _h("user-content")},
            {"role": "user", "content": [{"type": "text", "text": _h("part-text")}, {"type": _h("part-type")}]},
            {
                "role": "assistant",
                "content": None,
                "name": _h("assistant-name"),
                "tool_calls": [
                    {
                        "id": _h("call-id"),
                        "type": "function",
                        "function": {"name": _h("tool-name"), "arguments": '{"q": "' + _h("args-json") + '"}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "t2", "arguments": {"q": _h("args-dict")}}},
                    {"id": "c3", "type": "function", "function": {"name": "t3", "arguments": _h("args-text")}},
                ],
            },
            {
                "role": "tool",
                "tool_call_id": _h("result-of"),
                "name": _h("tool-msg-name"),
                "content": _h("tool-result"),
            },
            {"role": "tool", "tool_call_id": "c2", "content": '{"r": "' + _h("tool-json-result") + '"}'},
        ],
        "agent_version": _h("agent-version"),
        "end_user_id": _h("end-user"),
        "tags": [_h("tag")],
        "metadata": {_h("meta-key"): _h("meta-value"), "nested": {"deep": [_h("meta-deep")]}},
        "judge_scores": [
            {
                "judge": _h("judge"),
                "judge_version": _h("judge-version"),
                "criterion": _h("criterion"),
                "score": 0.1,
                "label": _h("label"),
                "reasoning": _h("reasoning"),
            },
            {"judge": "j2", "criterion": _h("label-only-criterion"), "label": _h("label-only")},
        ],
        "feedback": {"rating": "down", "comment": _h("feedback-comment"), "user_rephrased": True},
    }
    response = agent_client.post("/api/v1/conversations", payload, format="json")
    assert response.status_code == 201
    return response.json()["results"][0]["id"]


@pytest.fixture
def hostile_admin(member, org) -> Client:
    user = member("admin", username=_h("username")[:150])
    client = Client()
    client.force_login(user)
    return client


# Shown as text on the detail page (autoescaped, or pretty-printed JSON then autoescaped).
DETAIL_TEXT_FIELDS = [
    "external-id",
    "part-type",
    "assistant-name",
    "call-id",
    "tool-name",
    "args-json",
    "args-dict",
    "args-text",
    "result-of",
    "tool-msg-name",
    "tool-result",
    "tool-json-result",
    "agent-version",
    "end-user",
    "tag",
    "meta-key",
    "meta-value",
    "meta-deep",
    "judge",
    "judge-version",
    "criterion",
    "label",
    "reasoning",
    "label-only",
    "feedback-comment",
    "project-name",
    "org-name",
]
# Rendered as Markdown: raw HTML and the javascript: link stay the literal text they were sent as.
DETAIL_MARKDOWN_FIELDS = ["system-content", "user-content", "part-text"]


def test_the_detail_page_shows_every_hostile_field_as_text(hostile_admin, hostile):
    response = hostile_admin.get(f"/conversations/{hostile}/")

    assert response.status_code == 200
    page = _assert_inert(response.content.decode())
    text = "".join(page.text)
    for label in DETAIL_TEXT_FIELDS:
        assert f"{label}:{SCRIPT}" in text, label
    for label in DETAIL_MARKDOWN_FIELDS:
        assert f"{label}:{HOSTILE}" in text, label
    assert ESCAPED_SCRIPT in response.content.decode()
    # No link was made of the javascript: one, not even one without its target.
    assert [attrs for tag, attrs in page.elements if tag == "a" and "href" not in attrs] == []


def test_the_list_page_shows_hostile_fields_as_text(hostile_admin, hostile):
    response = hostile_admin.get("/conversations/")

    assert response.status_code == 200
    text = "".join(_assert_inert(response.content.decode()).text)
    for label in ["external-id", "agent-version", "tag", "user-content", "criterion", "label-only", "org-name"]:
        assert f"{label}:{SCRIPT}" in text, label


def test_the_htmx_rows_partial_is_escaped_too(hostile_admin, hostile):
    response = hostile_admin.get("/conversations/", HTTP_HX_REQUEST="true")

    text = "".join(_assert_inert(response.content.decode()).text)
    assert f"external-id:{SCRIPT}" in text


def test_hostile_filter_values_are_echoed_escaped(hostile_admin, hostile):
    response = hostile_admin.get("/conversations/", {"tag": SCRIPT, "agent_version": IMG, "judge": '"><script>x'})

    html = response.content.decode()
    _assert_inert(html)
    assert '"><script>x' not in html


def test_the_home_page_shows_hostile_fields_as_text(hostile_admin, hostile):
    response = hostile_admin.get("/")

    assert response.status_code == 200
    text = "".join(_assert_inert(response.content.decode()).text)
    for label in ["external-id", "agent-version", "user-content", "org-name", "username"]:
        assert f"{label}:{SCRIPT}" in text, label


def test_the_api_keys_page_shows_hostile_names_as_text(hostile_admin, hostile, project):
    response = hostile_admin.post("/settings/api-keys/", {"project": "support", "name": _h("key")[:100]})

    assert response.status_code == 200
    text = "".join(_assert_inert(response.content.decode()).text)
    for label in ["key", "project-name", "org-name", "username"]:
        assert f"{label}:{SCRIPT}" in text, label
    # The audit trail on home repeats the key's name inside JSON.
    home = hostile_admin.get("/").content.decode()
    assert f"key:{SCRIPT}" in "".join(_assert_inert(home).text)


def test_home_page_queries_are_pinned(browser_for, project, django_assert_num_queries):
    for n in range(3):
        _ingest(project, f"c-{n}", feedback={"rating": "down", "user_rephrased": True})
    client = browser_for("admin", username="root-admin")
    client.get("/")  # the session's first load may write (last login, preferences)

    # Session, user, membership; the conversation figures in one pass, the project count;
    # recent conversations and their judge scores; the person's memberships and their
    # organizations; members; audit events; the approvals count in the navigation bar (admins
    # decide too). None of it grows with the data.
    with django_assert_num_queries(12):
        response = client.get("/")

    assert response.context["stats"] == {"conversations": 3, "thumbs_down": 3, "rephrased": 3, "projects": 1}
