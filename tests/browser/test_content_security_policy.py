"""The Content-Security-Policy breaks nothing: Chromium reports no violation on the main pages,
while htmx swaps content in, the organization switcher works, and the API docs render."""

from __future__ import annotations

import pytest

from labeling import services as labeling_services
from reviewapp import services
from reviewapp.ingest_schemas import ConversationIn
from tests.browser.conftest import login
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory, conversation_payload
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]

# Collects violations from the page itself, besides the console, before any script runs.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watch(page) -> list[str]:
    messages: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda msg: messages.append(msg.text) if "Content Security Policy" in msg.text else None)
    return messages


def _violations(page, console: list[str]) -> list[str]:
    return console + page.evaluate("window.__csp || []")


def _visit(page, live_server, console: list[str], paths: list[str]) -> dict[str, list[str]]:
    seen = {}
    for path in paths:
        console.clear()
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        if path.endswith("/work"):
            page.wait_for_selector(".item-panel.active")
        page.wait_for_load_state("networkidle")
        seen[path] = _violations(page, console)
    return seen


def _queue_with_an_item(project):
    [ingested] = services.conversations_ingest(
        project=project, conversations=[ConversationIn.model_validate(conversation_payload("csp-1"))]
    )
    queue = make_queue(project)
    labeling_services.queue_items_add(queue=queue, conversation_ids=[ingested.id], user=None)
    return queue, ingested.id


def test_an_annotator_s_pages_run_under_the_policy_without_violations(page, live_server, project, member):
    member("annotator", username="kim")
    queue, _ = _queue_with_an_item(project)
    console = _watch(page)

    login(page, live_server, "kim", DEFAULT_PASSWORD)
    # Home loads the queue table through htmx.
    page.wait_for_selector(f'table.queues a[href="/labeling/queues/{queue.pk}/work"]')
    seen = {"/": _violations(page, console)}
    seen.update(
        _visit(page, live_server, console, ["/labeling/", f"/labeling/queues/{queue.pk}/work", "/settings/tokens/"])
    )

    assert seen == {path: [] for path in seen}


def test_an_admin_s_pages_run_under_the_policy_without_violations(page, live_server, project, member):
    member("admin", username="ada")
    _, conversation_id = _queue_with_an_item(project)
    console = _watch(page)

    login(page, live_server, "ada", DEFAULT_PASSWORD)
    seen = {"/": _violations(page, console)}
    seen.update(
        _visit(
            page,
            live_server,
            console,
            ["/conversations/", f"/conversations/{conversation_id}/", "/settings/tokens/", "/settings/api-keys/"],
        )
    )
    # An htmx swap: filtering the conversation list replaces its rows in place.
    page.goto(f"{live_server.url}/conversations/")
    console.clear()
    with page.expect_response(lambda r: "/conversations/?" in r.url):
        page.select_option("select[name=feedback_rating]", "down")
    page.wait_for_load_state("networkidle")
    seen["/conversations/ (htmx)"] = _violations(page, console)

    assert seen == {path: [] for path in seen}


def test_the_organization_switcher_submits_without_an_inline_handler(page, live_server, org, member, other_org):
    user = member("engineer", username="ada")
    MembershipFactory(user=user, organization=other_org, role="engineer")
    console = _watch(page)
    login(page, live_server, "ada", DEFAULT_PASSWORD)

    with page.expect_navigation():
        page.select_option("#org-select", "globex")

    assert page.locator("#org-select option:checked").get_attribute("value") == "globex"
    assert _violations(page, console) == []


@pytest.mark.parametrize(
    ("path", "rendered"), [("/api/docs/", ".swagger-ui .opblock-tag"), ("/api/redoc/", ".api-content")]
)
def test_the_api_docs_render_under_their_policy(page, live_server, path, rendered):
    console = _watch(page)

    page.goto(f"{live_server.url}{path}")
    # The docs build the whole schema on first request: seconds on a loaded machine.
    page.wait_for_selector(rendered, timeout=60_000)
    page.wait_for_load_state("networkidle")

    # Redoc's "API docs by Redocly" logo comes from its CDN: the policy blocking it is what keeps
    # the docs from telling a third party who reads them.
    blocked = [v for v in _violations(page, console) if "cdn.redoc.ly/redoc/logo-mini.svg" not in v]
    assert blocked == []


def test_the_admin_runs_under_the_policy(page, live_server, project, member):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    console = _watch(page)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    seen = {"/admin/": _violations(page, console)}
    seen.update(
        _visit(
            page,
            live_server,
            console,
            ["/admin/reviewapp/membership/", "/admin/reviewapp/membership/add/", f"/admin/auth/user/{root.pk}/change/"],
        )
    )

    assert seen == {path: [] for path in seen}
