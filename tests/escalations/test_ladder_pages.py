"""The ladder pages: who may open them, tenants, creating a ladder and editing it (each save the
next version through the API's service), errors beside their field, hostile text escaped."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from escalations.models import LadderVersion
from reviewapp.models import AuditEvent
from tests.escalations.factories_decisions import make_ladder, tier
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/escalations/ladders/"
NEW = "/escalations/ladders/new"


def edit(name: str) -> str:
    return f"/escalations/ladders/{name}/"


@pytest.fixture
def finance(project) -> LadderVersion:
    return make_ladder(
        project,
        tier(role="approver", timeout_seconds=900),
        tier(users=("lead", "cfo"), timeout_seconds=3600, approvals_required=2),
        name="finance",
    )


def _form(**overrides: str) -> dict[str, str]:
    """The editor's post for one approver tier of 30 minutes."""
    data = {
        "project": "support",
        "op": "save",
        "t-count": "1",
        "t-0-who": "approver",
        "t-0-users": "",
        "t-0-timeout": "30",
        "t-0-unit": "minutes",
        "t-0-approvals": "1",
        "timeout_outcome": "reject",
        "notify_webhook_url": "",
    }
    return {**data, **overrides}


def _field_block(html: str, field: str) -> str:
    """The `.field` that holds the input or select `field`, up to the next field."""
    start = html.index(f'id="{field}"')
    end = html.find('<div class="field', start)
    return html[start : end if end != -1 else len(html)]


def _no_inline_code(html: str) -> None:
    assert "style=" not in html
    assert "<style" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"<[^>]*\son[a-z]+=", html)  # no event-handler attributes


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("engineer", 200), ("admin", 200), ("approver", 403), ("annotator", 403)])
def test_engineers_and_admins_only(browser_for, finance, role, status):
    client = browser_for(role)
    for path in (LIST, NEW, edit("finance")):
        assert client.get(path, {"project": "support"}).status_code == status, path
    assert client.post(NEW, _form(name="ops")).status_code == (302 if status == 200 else 403)
    assert LadderVersion.objects.filter(name="ops").exists() == (status == 200)


def test_signed_out_goes_to_login(finance):
    for path in (LIST, NEW, edit("finance")):
        answer = Client().get(path)
        assert answer.status_code == 302 and "/login/" in answer["Location"]
    assert Client().post(NEW, _form(name="ops")).status_code == 302
    assert not LadderVersion.objects.filter(name="ops").exists()


def test_another_tenants_project_and_ladder_are_404(browser_for, project, other_project, finance):
    theirs = make_ladder(other_project, tier(role="approver"), name="theirs")
    client = browser_for("engineer")
    for path in (LIST, NEW, edit("finance"), edit("theirs")):
        assert client.get(path, {"project": "shop"}).status_code == 404, path
    assert client.get(edit("theirs"), {"project": "support"}).status_code == 404
    assert client.get(edit("nope"), {"project": "support"}).status_code == 404
    # Posting their project's slug or their ladder's name writes nothing anywhere.
    assert client.post(NEW, _form(project="shop", name="mine")).status_code == 404
    assert client.post(edit("theirs"), _form(project="support", base_version="1")).status_code == 404
    assert client.post(edit("theirs"), _form(project="shop", base_version="1")).status_code == 404
    assert not LadderVersion.objects.filter(name="mine").exists()
    assert list(LadderVersion.objects.filter(pk=theirs.pk).values_list("version", flat=True)) == [1]
    assert LadderVersion.objects.filter(name="theirs").count() == 1


def test_a_ladder_name_holding_nul_is_a_404_on_either_database(browser_for, finance):
    # A NUL in a name reached PostgreSQL, which refuses it in a text parameter: a 500.
    client = browser_for("engineer")
    for name in ("fin%00ance", "finance%00", "%00"):
        assert client.get(edit(name), {"project": "support"}).status_code == 404, name
        assert client.post(edit(name), _form(project="support", base_version="1")).status_code == 404, name
    assert LadderVersion.objects.filter(project=finance.project).count() == 1


def test_posts_need_the_csrf_token(member, finance):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member("engineer"))
    assert client.post(NEW, _form(name="ops")).status_code == 403
    assert client.post(edit("finance"), _form(base_version="1")).status_code == 403
    assert LadderVersion.objects.filter(project=finance.project).count() == 1


# --- reading ---------------------------------------------------------------------------------


def test_the_list_shows_each_ladder_as_it_stands(browser_for, project, finance):
    make_ladder(project, tier(role="approver", timeout_seconds=3600), name="default")
    make_ladder(project, tier(role="admin", timeout_seconds=5400), name="finance")  # finance v2
    html = browser_for("engineer").get(LIST).content.decode()
    assert 'href="/escalations/ladders/finance/?project=support"' in html
    assert 'href="/escalations/ladders/default/?project=support"' in html
    rows = html.split("<tbody>", 1)[1]
    assert rows.index("default") < rows.index("finance")  # by name
    assert 'any admin</strong> <span class="muted small">· 1 h 30 min' in html  # finance's current version
    assert "lead, cfo" not in html  # its first version is history
    assert 'id="default-note"' not in html
    _no_inline_code(html)


def test_a_project_without_a_default_ladder_says_how_it_will_be_made(browser_for, project):
    html = browser_for("engineer").get(LIST).content.decode()
    assert 'id="default-note"' in html
    assert "any approver; 1 approval within 1 h" in html
    assert 'href="/escalations/ladders/new?project=support&amp;name=default"' in html
    assert (
        'value="default"'
        in browser_for("engineer").get(NEW, {"project": "support", "name": "default"}).content.decode()
    )


def test_the_edit_page_fills_the_form_with_the_current_version(browser_for, finance):
    html = browser_for("engineer").get(edit("finance")).content.decode()
    assert 'name="t-count" value="2"' in html
    assert 'id="t-0-timeout" name="t-0-timeout" value="15"' in html
    assert re.search(r'id="t-1-who".*?<option value="users" selected>', html, re.S)
    assert ">lead\ncfo</textarea>" in html
    assert 'name="base_version" value="1"' in html
    assert "Save as version 2" in html
    _no_inline_code(html)


def test_the_list_reads_a_fixed_number_of_queries(browser_for, project):
    client = browser_for("engineer")
    make_ladder(project, tier(role="approver"), name="a")
    client.get(LIST)
    with CaptureQueriesContext(connection) as one:
        client.get(LIST)
    for name in ("b", "c", "d"):
        make_ladder(project, tier(role="approver"), name=name)
        make_ladder(project, tier(role="admin"), name=name)
    with CaptureQueriesContext(connection) as four:
        client.get(LIST)
    assert len(four) == len(one)


# --- writing ---------------------------------------------------------------------------------


def test_creating_a_ladder_makes_version_1_through_the_service(browser_for, project):
    client = browser_for("admin", username="ada")
    data = _form(
        name="ops",
        **{
            "t-count": "2",
            "t-1-who": "users",
            "t-1-users": "lead, cfo",
            "t-1-timeout": "7200",
            "t-1-unit": "seconds",
            "t-1-approvals": "2",
        },
    )
    answer = client.post(NEW, data)
    assert answer.status_code == 302
    assert answer["Location"] == "/escalations/ladders/ops/?project=support"
    version = LadderVersion.objects.get(project=project, name="ops")
    assert version.version == 1 and version.created_by.username == "ada"
    assert version.tiers == [
        {"role": "approver", "timeout_seconds": 1800, "approvals_required": 1},
        {"users": ["lead", "cfo"], "timeout_seconds": 7200, "approvals_required": 2},
    ]
    assert AuditEvent.objects.filter(kind="ladder_version.created").count() == 1
    page = client.get(answer["Location"]).content.decode()
    assert "Saved ladder ops as version 1." in page
    assert "First version." in page


def test_a_new_ladder_may_not_take_an_existing_name(browser_for, finance):
    answer = browser_for("engineer").post(NEW, _form(name="finance"))
    assert answer.status_code == 400
    assert "A ladder of this name exists" in _field_block(answer.content.decode(), "f-name")
    assert LadderVersion.objects.filter(name="finance").count() == 1


def test_editing_makes_the_next_version_and_keeps_the_old_one(browser_for, finance):
    client = browser_for("engineer", username="eve")
    before = LadderVersion.objects.values().get(pk=finance.pk)
    data = _form(
        base_version="1",
        **{
            "t-count": "2",
            "t-1-who": "users",
            "t-1-users": "lead\nceo",
            "t-1-timeout": "90",
            "t-1-unit": "minutes",
            "t-1-approvals": "2",
            "notify_webhook_url": "https://hooks.slack.com/services/T0/B0/SECRET",
        },
    )
    answer = client.post(edit("finance"), data)
    assert answer.status_code == 302, re.findall(r'role="alert">([^<]*)', answer.content.decode())
    versions = list(LadderVersion.objects.filter(name="finance").order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert LadderVersion.objects.values().get(pk=finance.pk) == before
    assert versions[1].tiers[0]["timeout_seconds"] == 1800
    assert versions[1].tiers[1] == {"users": ["lead", "ceo"], "timeout_seconds": 5400, "approvals_required": 2}
    assert versions[1].created_by.username == "eve"
    html = client.get(answer["Location"]).content.decode()
    history = html.split('id="history"', 1)[1]
    assert history.index("Version 2") < history.index("Version 1")
    assert "Tier 1 changed: timeout: 15 min → 30 min" in history
    assert "Tier 2 changed: who: lead, cfo → lead, ceo; timeout: 1 h → 1 h 30 min" in history
    assert "Notification webhook set." in history
    assert "SECRET" not in history  # the URL is a credential: the history only says it was set
    assert 'name="base_version" value="2"' in html


def test_saving_what_is_already_there_makes_no_version(browser_for, finance):
    client = browser_for("engineer")
    form = client.get(edit("finance")).content.decode()
    assert 'value="15"' in form
    data = _form(
        base_version="1",
        **{"t-0-timeout": "15", "t-count": "2", "t-1-who": "users", "t-1-users": "lead\ncfo"},
        **{"t-1-timeout": "60", "t-1-unit": "minutes", "t-1-approvals": "2"},
    )
    answer = client.post(edit("finance"), data, follow=True)
    assert "Nothing changed: no new version was made." in answer.content.decode()
    assert LadderVersion.objects.filter(name="finance").count() == 1


def test_a_save_over_a_version_made_meanwhile_is_refused_until_reviewed(browser_for, finance):
    client = browser_for("engineer")
    make_ladder(finance.project, tier(role="admin"), name="finance")  # someone else's version 2
    answer = client.post(edit("finance"), _form(base_version="1"))
    assert answer.status_code == 409
    html = answer.content.decode()
    assert "Version 2 was saved while you were editing" in html
    assert 'name="base_version" value="2"' in html and 'name="t-0-timeout" value="30"' in html
    assert LadderVersion.objects.filter(name="finance").count() == 2
    assert client.post(edit("finance"), _form(base_version="2")).status_code == 302
    assert LadderVersion.objects.filter(name="finance").count() == 3


def test_the_row_buttons_redraw_the_form_and_save_nothing(browser_for, finance):
    client = browser_for("engineer")
    base = _form(base_version="1", **{"t-count": "2", "t-1-who": "admin", "t-1-timeout": "5", "t-1-unit": "seconds"})
    html = client.post(edit("finance"), {**base, "op": "add"}).content.decode()
    assert html.count('<fieldset class="t-row"') == 3 and 'name="t-count" value="3"' in html
    assert 'id="t-2-timeout" name="t-2-timeout" value="5"' in html
    html = client.post(edit("finance"), {**base, "op": "up-1"}).content.decode()
    assert re.search(r'id="t-0-who".*?<option value="admin" selected>', html, re.S)
    html = client.post(edit("finance"), {**base, "op": "remove-0"}).content.decode()
    assert html.count('<fieldset class="t-row"') == 1
    assert LadderVersion.objects.filter(name="finance").count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"t-count": "2", "t-1-who": "approver", "t-1-timeout": "0", "t-1-unit": "seconds"},
            "t-1-timeout",
            "Must be from 1 minute to 30 days",
        ),
        ({"t-0-timeout": "soon"}, "t-0-timeout", "Enter a whole number of minutes."),
        (
            {"t-0-who": "users", "t-0-users": "lead", "t-0-approvals": "3"},
            "t-0-approvals",
            "Needs 3 distinct approvals",
        ),
        ({"t-0-who": "users", "t-0-users": "ok, no!pe"}, "t-0-users", "“no!pe”: Not a username"),
        ({"t-0-who": "approver", "t-0-users": "lead"}, "t-0-who", "either a role or users, not both"),
        ({"t-0-approvals": "9"}, "t-0-approvals", "from 1 to 5"),
        ({"t-count": "0"}, "tiers", "At least 1 item"),
        ({"timeout_outcome": "approve"}, "f-timeout_outcome", "fails closed"),
        ({"notify_webhook_url": "ftp://x"}, "f-notify_webhook_url", "Only http:// and https://"),
        ({"name": "bad name"}, "f-name", "Letters, digits"),
    ],
)
def test_errors_show_beside_their_field_and_save_nothing(browser_for, project, overrides, field, message):
    answer = browser_for("engineer").post(NEW, _form(name="ops") | overrides)
    assert answer.status_code == 400
    html = answer.content.decode()
    if field == "tiers":
        assert message in html.split("<h2>Tiers</h2>", 1)[1].split("<h2>", 1)[0]
    else:
        block = _field_block(html, field)
        assert re.search(r'class="error small field-error" role="alert">[^<]*' + re.escape(message), block), block
    assert not LadderVersion.objects.filter(project=project).exists()


def test_an_edit_with_an_error_keeps_what_was_typed(browser_for, finance):
    answer = browser_for("engineer").post(edit("finance"), _form(base_version="1", **{"t-0-timeout": "0"}))
    assert answer.status_code == 400
    html = answer.content.decode()
    assert 'name="t-0-timeout" value="0"' in html and 'name="t-count" value="1"' in html
    assert "Must be from 1 minute to 30 days" in _field_block(html, "t-0-timeout")
    assert LadderVersion.objects.filter(name="finance").count() == 1


# --- hostile text ----------------------------------------------------------------------------


def test_hostile_names_are_escaped(browser_for, project):
    hostile = '<img src=x onerror=alert(1)>"'
    # A name the validator would refuse, stored behind its back, and a hostile username.
    maker = UserFactory(username=hostile)
    LadderVersion.objects.create(
        organization=project.organization,
        project=project,
        name=hostile,
        version=1,
        tiers=[{"users": [hostile], "timeout_seconds": 60, "approvals_required": 1}],
        created_by=maker,
    )
    make_ladder(project, tier(role="approver"), name="ok")
    LadderVersion.objects.filter(name="ok").update(created_by=maker)
    client = browser_for("engineer")
    for html in (client.get(LIST).content.decode(), client.get(edit("ok")).content.decode()):
        assert "<img src=x" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # Posted hostile text comes back escaped beside its field.
    answer = client.post(
        NEW, _form(name=hostile, **{"t-0-who": "users", "t-0-users": hostile, "notify_webhook_url": hostile})
    )
    html = answer.content.decode()
    assert answer.status_code == 400 and "<img src=x" not in html
    assert 'value="&lt;img src=x onerror=alert(1)&gt;&quot;"' in html


def test_a_hostile_webhook_url_the_validator_accepts_is_escaped_in_the_form(browser_for, project):
    url = 'https://hooks.example/"><script>alert(1)</script>'
    client = browser_for("admin")
    assert client.post(NEW, _form(name="ops", notify_webhook_url=url)).status_code == 302
    assert LadderVersion.objects.get(name="ops").notify_webhook_url == url
    html = client.get(edit("ops")).content.decode()
    assert "<script>alert" not in html
    assert 'value="https://hooks.example/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_the_project_picker_lists_only_this_organizations_projects(browser_for, project, other_project):
    ProjectFactory(organization=project.organization, slug="billing", name="Billing agent")
    make_ladder(project, tier(role="approver"), name="support-only")
    html = browser_for("engineer").get(LIST, {"project": "billing"}).content.decode()
    assert "Billing agent" in html and "Support agent" in html and "Shop agent" not in html
    assert "support-only" not in html


def test_named_users_who_cannot_decide_are_pointed_out(browser_for, project, member, other_org):
    member("approver", username="lead")
    member("engineer", username="dev")
    member("approver", username="outsider", organization=other_org)
    make_ladder(project, tier(users=("lead", "dev", "outsider", "typo"), timeout_seconds=600), name="named")
    html = browser_for("engineer").get(edit("named")).content.decode()
    warnings = re.findall(r'class="small read-only warning">([^<]*)', html)
    assert warnings == [
        "Tier 1: dev is an engineer, who may not decide actions.",
        "Tier 1: outsider is not a member of this organization.",
        "Tier 1: typo is not a member of this organization.",
    ]
