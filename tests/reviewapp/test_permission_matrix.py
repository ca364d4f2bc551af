"""Every method to every /api/v1/ route as every role, anonymous, and with another tenant's ids.

The route list comes from the URL resolver, so a new endpoint is covered the day it is added.
What must hold everywhere: no 5xx; HEAD answers exactly what GET answers; a method the view
does not implement is refused; a role gets through only where its capability allows; OPTIONS
only for a role that may call some method of the view; a refused request changes no row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from labeling import services as labeling_services
from reviewapp import services
from reviewapp.permissions import ANY_MEMBER, IsOrganizationMember
from reviewapp.principal import AGENT, CAPABILITIES
from tests.escalations.factories_decisions import make_ladder, make_pending_action
from tests.evaluation.factories_datasets import make_frozen_dataset
from tests.evaluation.factories_runs import make_run
from tests.factories import ConversationFactory, MembershipFactory, OrganizationFactory, ProjectFactory
from tests.labeling.factories import make_queue

METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
ROLES = [AGENT, "annotator", "approver", "engineer", "admin"]
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Route:
    name: str
    view: Any  # the APIView class
    kwargs: tuple[str, ...]


def _api_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(patterns: list[Any], namespace: str | None) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, p.namespace or namespace)
            elif isinstance(p, URLPattern) and namespace == "api":
                view = p.callback.view_class  # type: ignore[attr-defined]
                routes.append(Route(p.name, view, tuple(p.pattern.regex.groupindex)))

    walk(get_resolver().url_patterns, None)
    return routes


ROUTES = _api_routes()


def _handles(view: Any, method: str) -> bool:
    method = "GET" if method == "HEAD" else method
    return method.lower() in view.http_method_names and callable(getattr(view, method.lower(), None))


def _expected_allowed(role: str, view: Any, method: str) -> bool:
    """From the view's declaration and the role table, written out independently of the
    permission class under test."""
    declared = view.__dict__.get("required_capability", getattr(view, "required_capability", None))
    if method == "OPTIONS":
        return any(_expected_allowed(role, view, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE"))
    if not _handles(view, method):
        return False
    if isinstance(declared, dict):
        declared = declared.get("GET" if method == "HEAD" else method)
    return declared is not None and (declared == ANY_MEMBER or declared in CAPABILITIES[role])


def _rows_written() -> int:
    """Rows inserted, updated or deleted so far on this connection (the test client serves
    requests on it): a refused request must not move this counter."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables")
        else:
            cursor.execute("SELECT total_changes()")
        return int(cursor.fetchone()[0])


def _tenant(slug: str, *, with_people: bool) -> dict[str, Any]:
    organization = OrganizationFactory(slug=slug)
    project = ProjectFactory(organization=organization, slug=f"{slug}-support")
    conversation = ConversationFactory(project=project)
    queue = make_queue(project)
    labeling_services.queue_items_add(queue=queue, conversation_ids=[conversation.pk], user=None)
    key = services.api_key_create(project=project, name="agent")
    spare = services.api_key_create(project=project, name="spare")  # the one an admin may revoke
    # A token of someone else in the organization: the one an admin may revoke.
    bystander = get_user_model().objects.create(username=f"{slug}-bystander")
    MembershipFactory(user=bystander, organization=organization, role="annotator")
    bystander_token = services.personal_token_create(user=bystander, organization=organization)
    # Pending at a tier approvers (and admins) may decide: their claims and decisions get through.
    ladder = make_ladder(project, name=f"{slug}-ladder")
    action = make_pending_action(project, ladder)
    dataset = make_frozen_dataset(project, conversation)
    version = dataset.versions.get(number=1)
    item_key = version.items.get().key
    runs = [make_run(dataset, version, {item_key: True}, agent_version=v) for v in ("v1", "v2")]
    ids = {
        "project_id": project.pk,
        "project_slug": project.slug,
        "key_id": spare.record.pk,
        "token_id": bystander_token.record.pk,
        "conversation_id": conversation.pk,
        "schema_id": queue.schema_id,
        "queue_id": queue.pk,
        "item_id": queue.items.get().pk,
        "action_id": action.pk,
        "ladder_name": ladder.name,
        "dataset_id": dataset.pk,
        "dataset_item_id": dataset.items.get().pk,
        "number": version.number,
        "other": version.number,
        "run_id": runs[0].pk,
        "other_run_id": runs[1].pk,
    }
    clients = {AGENT: Client(HTTP_AUTHORIZATION=f"Bearer {key.raw}"), ANONYMOUS: Client()}
    if with_people:
        for role in ROLES[1:]:
            user = get_user_model().objects.create(username=f"{slug}-{role}")  # no password: hashing is slow
            MembershipFactory(user=user, organization=organization, role=role)
            raw = services.personal_token_create(user=user, organization=organization).raw
            clients[role] = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return {"ids": ids, "clients": clients}


def _send(client: Client, method: str, path: str) -> Any:
    body = b"" if method in ("GET", "HEAD", "OPTIONS") else json.dumps({}).encode()
    return client.generic(method, path, body, content_type="application/json")


def _guarded(view: Any) -> bool:
    """Whether the view is behind the role check (the token exchange is not: AllowAny, throttled)."""
    return any(isinstance(p, IsOrganizationMember) for p in view().get_permissions())


def test_the_walk_finds_every_api_view_and_each_declares_its_capabilities():
    assert len(ROUTES) >= 33
    assert [r.name for r in ROUTES if not _guarded(r.view)] == ["auth-token"]
    for route in ROUTES:
        view = route.view
        if not _guarded(view):
            continue
        declared = getattr(view, "required_capability", None)
        assert declared is not None, f"{view.__name__} names no required_capability"
        if isinstance(declared, dict):
            handled = {m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if _handles(view, m)}
            assert set(declared) == handled, f"{view.__name__} maps {set(declared)} but implements {handled}"


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_every_method_as_every_role(db, route, monkeypatch):
    # Authentication stamps a credential's last use (at most once a minute): a write of its
    # own, whatever the answer. Off here, so that any row written comes from the request.
    monkeypatch.setattr(services, "credential_touch", lambda **kwargs: None)
    home = _tenant("acme", with_people=True)
    away = _tenant("globex", with_people=False)
    path = reverse(f"api:{route.name}", kwargs={k: home["ids"][k] for k in route.kwargs})
    rows = _rows_written()

    for who in [ANONYMOUS, *ROLES]:
        cache.clear()  # the token exchange's throttle counts every method; one budget per caller
        client = home["clients"][who]
        answers: dict[str, int] = {}
        for method in METHODS:
            response = _send(client, method, path)
            status = answers[method] = response.status_code
            where = f"{method} {path} as {who}: {status}"
            assert status < 500, where
            if method == "HEAD":
                assert status == answers["GET"], where
                assert response.content == b"", where
            if not _guarded(route.view):
                # Anyone may exchange a password for a token; a bearer header is ignored there.
                assert status == {"POST": 400, "OPTIONS": 200}.get(method, 405), where
            elif who == ANONYMOUS:
                assert status == 401, where
            elif not _handles(route.view, method) and method != "OPTIONS":
                assert status == 405, where
            elif _expected_allowed(who, route.view, method):
                assert status not in (401, 403, 405), where
            else:
                assert status == 403, where
            # Reads may write too (a statistics snapshot is computed on read), so the counter is
            # re-read after every request and only refused writes must leave it where it was.
            after = _rows_written()
            if method in WRITES and 400 <= status < 500:
                assert after == rows, f"{where} wrote rows"
            rows = after

    if not route.kwargs:
        return
    # Ids of another organization: not found (or refused before the lookup), never served.
    foreign = reverse(f"api:{route.name}", kwargs={k: away["ids"][k] for k in route.kwargs})
    for who in ROLES:
        for method in METHODS:
            response = _send(home["clients"][who], method, foreign)
            where = f"{method} {foreign} (another tenant's) as {who}: {response.status_code}"
            if method == "OPTIONS":
                # Describes the endpoint, never the object: the same answer as for one's own id.
                own = _send(home["clients"][who], method, path)
                assert (response.status_code, response.content) == (own.status_code, own.content), where
                continue
            assert response.status_code in (403, 404, 405), where
            if method in WRITES:
                assert _rows_written() == rows, f"{where} wrote rows"


def test_head_never_reveals_what_get_refuses(api_client_for, agent_client, project):
    """The two reported leaks: an annotator's HEAD on the conversation list (a count oracle
    with filters) and an agent's HEAD on the queue list (a 500)."""
    ConversationFactory(project=project)
    annotator = api_client_for("annotator")

    assert annotator.get("/api/v1/conversations").status_code == 403
    assert annotator.head("/api/v1/conversations?agent_version=v1").status_code == 403
    assert agent_client.get("/api/v1/queues").status_code == 403
    assert agent_client.head("/api/v1/queues").status_code == 403


def test_a_method_missing_from_a_capability_map_is_refused(api_client_for, monkeypatch):
    """Deny by default: a handler the map forgot is not callable by anyone, even an admin."""
    from reviewapp import apis

    monkeypatch.setattr(apis.ConversationsApi, "required_capability", {"POST": "conversations.ingest"})
    admin = api_client_for("admin")

    assert admin.get("/api/v1/conversations").status_code == 403
    assert admin.head("/api/v1/conversations").status_code == 403
    assert admin.options("/api/v1/conversations").status_code == 200  # it may POST


def test_a_view_naming_no_capability_is_refused(api_client_for, monkeypatch):
    from reviewapp import apis

    monkeypatch.delattr(apis.MeApi, "required_capability")

    assert api_client_for("admin").get("/api/v1/me").status_code == 403
