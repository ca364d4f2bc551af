"""The import rules of docs/architecture.md ("Import rules"), checked over every first-party module.

A plain walk over the syntax tree rather than import-linter: it sees every import statement,
including the ones inside functions and `if TYPE_CHECKING:` blocks, needs no dependency, and
says which line broke which rule. Layers alone (what import-linter's `layers` contract checks)
would not catch an app importing another app's `views` or `apis`; that takes the module rules
below as well.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Which apps each app may import. Direct imports only: the rules hold for every edge, so they
# hold for every chain. `demo` may import every other app and nothing imports it.
ALLOWED_APPS: dict[str, frozenset[str]] = {
    "reviewapp": frozenset(),
    "labeling": frozenset({"reviewapp"}),
    "escalations": frozenset({"labeling", "reviewapp"}),
    "evaluation": frozenset({"labeling", "reviewapp"}),
    "provisioning": frozenset({"reviewapp", "labeling", "escalations", "evaluation"}),
    "demo": frozenset({"reviewapp", "labeling", "escalations", "evaluation"}),
}
# Top-level packages that are not apps and are not checked.
NOT_APPS = frozenset({"tests", "bench", "clients"})

# Modules of an app that no other app imports: entry points (pages, API views, urls, the admin,
# tasks, commands, receivers, app configs) and the app's own plumbing (row locks, hand-written
# SQL). Another app calls the services and selectors behind them instead.
PRIVATE_MODULES = frozenset(
    {
        "views",
        "apis",
        "urls",
        "urls_api",
        "admin",
        "tasks",
        "receivers",
        "management",
        "migrations",
        "apps",
        "lock_objects",
        "sql",
        "forms",
    }
)
# Packages another app imports only as a whole (`from labeling.services import item_claim`), never
# a module inside them: the package re-exports its public names, and its modules may move.
WHOLE_PACKAGES = frozenset({"models", "services", "selectors"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source}\n    {self.reason}"


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute module a (possibly relative) `from ... import` names."""
    if level == 0:
        return module or ""
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _module_problem(importer_app: str, target: str, name: str | None = None) -> str | None:
    """Why `importer_app` may not import `target` (or `name` from it), or None."""
    parts = target.split(".")
    app = parts[0]
    if app not in ALLOWED_APPS or app == importer_app:
        return None
    if app not in ALLOWED_APPS[importer_app]:
        allowed = ", ".join(sorted(ALLOWED_APPS[importer_app])) or "no other app"
        return f"{importer_app} may not import {app} ({importer_app} may import {allowed})"
    # `from labeling import views` names a module through the package.
    path = [*parts[1:], name] if name is not None and len(parts) == 1 else parts[1:]
    if path and path[0] in PRIVATE_MODULES:
        return f"{app}.{path[0]} is {app}'s own: use its services, selectors or serializers"
    if private := next((part for part in path if part.startswith("_")), None):
        return f"{'.'.join([app, *path[: path.index(private) + 1]])} is private to {app}"
    if len(path) >= 2 and path[0] in WHOLE_PACKAGES:
        inside = ".".join([app, *path[:2]])
        return f"{inside} is inside {app}'s {path[0]} package: import from {app}.{path[0]}"
    if name is not None and name.startswith("_") and name != "*":
        return f"{name} is private to {target}"
    return None


def check_source(source: str, *, module: str, path: str = "<string>", is_package: bool = False) -> list[Violation]:
    """Every import in `source` (the module `module`) that breaks a rule."""
    importer_app = module.split(".")[0]
    tree = ast.parse(source, filename=path)
    lines = source.splitlines()
    found: list[Violation] = []
    for node in ast.walk(tree):
        problems: list[str | None] = []
        if isinstance(node, ast.Import):
            problems = [_module_problem(importer_app, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node.module, node.level, module, is_package)
            problems = [_module_problem(importer_app, target, alias.name) for alias in node.names]
        for reason in dict.fromkeys(p for p in problems if p):
            text = "\n".join(lines[node.lineno - 1 : (node.end_lineno or node.lineno)]).strip()
            found.append(Violation(path=path, line=node.lineno, source=text, reason=reason))
    return found


def _first_party_modules() -> list[tuple[str, Path]]:
    out = []
    for package in sorted(p.parent for p in ROOT.glob("*/__init__.py")):
        if package.name in NOT_APPS:
            continue
        for file in sorted(package.rglob("*.py")):
            relative = file.relative_to(ROOT).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            out.append((".".join(parts), file))
    return out


def test_every_top_level_package_is_an_app_with_rules():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_APPS
    assert packages - ALLOWED_APPS.keys() == set(), "a new app: add its allowed imports to ALLOWED_APPS and the docs"


def test_first_party_imports_follow_the_rules():
    modules = _first_party_modules()
    assert {m.split(".")[0] for m, _ in modules} >= {"reviewapp", "labeling", "demo"}
    violations = [
        v
        for module, file in modules
        for v in check_source(
            file.read_text(),
            module=module,
            path=str(file.relative_to(ROOT)),
            is_package=file.name == "__init__.py",
        )
    ]
    assert not violations, "Import rules broken (docs/architecture.md, Import rules):\n" + "\n".join(
        map(str, violations)
    )


@pytest.mark.parametrize(
    ("module", "source", "reason"),
    [
        ("reviewapp.services", "from labeling import services", "reviewapp may not import labeling"),
        ("reviewapp.views", "def f():\n    import demo.seed", "reviewapp may not import demo"),
        ("labeling.services", "from escalations.services import x", "labeling may not import escalations"),
        ("labeling.views", "from evaluation import selectors", "labeling may not import evaluation"),
        ("labeling.views", "from demo.scenarios import DEMO_ORG", "labeling may not import demo"),
        ("escalations.services", "import evaluation.selectors", "escalations may not import evaluation"),
        ("evaluation.services", "from escalations import services", "evaluation may not import escalations"),
        ("labeling.apis", "from reviewapp.apis import principal_of", "reviewapp.apis is reviewapp's own"),
        ("labeling.views", "from reviewapp.views import member_required", "reviewapp.views is reviewapp's own"),
        ("labeling.views", "from reviewapp import views", "reviewapp.views is reviewapp's own"),
        ("escalations.services", "import labeling.tasks", "labeling.tasks is labeling's own"),
        ("demo.seed", "from labeling.lock_objects import item_lock", "labeling.lock_objects is labeling's own"),
        ("demo.seed", "from labeling.urls import urlpatterns", "labeling.urls is labeling's own"),
        ("evaluation.services", "from labeling.models.queue import Queue", "inside labeling's models package"),
        ("evaluation.services", "from labeling.services import _helper", "_helper is private"),
        ("evaluation.services", "from labeling._private import x", "labeling._private is private"),
        ("evaluation.services", "import labeling.services._common", "labeling.services._common is private"),
        ("evaluation.services", "from labeling.services import _common", "_common is private"),
        ("escalations.services", "from labeling.services.claims import item_claim", "inside labeling's services"),
        ("escalations.services", "from labeling.selectors.queues import x", "inside labeling's selectors"),
        ("escalations.views", "from labeling.forms import question_views", "labeling.forms is labeling's own"),
        (
            "escalations.services",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from labeling.admin import QueueAdmin",
            "labeling.admin is labeling's own",
        ),
    ],
)
def test_the_check_catches(module, source, reason):
    violations = check_source(source, module=module)
    assert len(violations) == 1
    assert reason in violations[0].reason


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("labeling.services", "from reviewapp import services, selectors, validation"),
        ("labeling.apis", "from reviewapp.serializers import ConversationDetailSerializer"),
        ("labeling.services", "from reviewapp.models import Conversation, Project"),
        ("labeling.views", "from .selectors import queue_list\nfrom . import services"),
        ("labeling.views", "from labeling.views import helper\nfrom labeling import _private"),
        ("escalations.services", "from labeling import selectors\nfrom reviewapp.errors import Conflict"),
        ("escalations.services", "from labeling.services import item_claim, QueueSpec"),
        ("labeling.views.work", "from labeling.services._common import _user\nfrom labeling.forms import id_or_none"),
        ("demo.seed", "from labeling import rubric, services\nfrom escalations.services import x"),
        ("reviewapp.urls", "from django.urls import include\nINCLUDE = include('labeling.urls')"),
    ],
)
def test_the_check_allows(module, source):
    assert check_source(source, module=module, is_package=False) == []


def test_relative_imports_are_resolved():
    violations = check_source("from ..views import member_required", module="reviewapp.management.commands.x")
    assert violations == []
    violations = check_source("from .. import views", module="labeling.x.y")
    assert violations == []
    assert _absolute("views", 2, "labeling.sub.mod", False) == "labeling.views"
    assert _absolute(None, 1, "labeling", True) == "labeling"
