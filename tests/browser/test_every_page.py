"""Every page, as every role that can open it, at a laptop's and a phone's size: no horizontal
overflow, no console error, no failed request, and the page's primary action (the element
marked `data-primary`) on the first screen. Screenshots go to var/screenshots/<role>/ (CI keeps
them as artifacts) so a person can look at what the checks cannot judge.

Adding a page is one line in PAGES. Its path may name {queue}, {work_queue}, {review_item}, {conversation},
{action}, {schema}, {project}, {dataset} and {run}, which are found in the demo data after seeding."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Count

from demo.scenarios import DEMO_PASSWORD, DEMO_PROJECT
from escalations.models import Action
from evaluation.models import DatasetRun
from labeling import selectors as labeling_selectors
from labeling.models import ItemStatus, LabelSchema, Queue
from reviewapp.models import Conversation
from reviewapp.principal import CAPABILITIES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROLES = ("annotator", "approver", "engineer", "admin")
SIZES = ((1366, 768), (390, 844))
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    capability: str | None  # the capability that opens it; None: any member
    primary: bool = False  # it has a [data-primary] action, which must be on the first screen
    ready: str | None = None  # a selector that is there once the page has finished drawing


PAGES = [
    Page("home", "/", None),
    Page("labeling-queues", "/labeling/", "labeling.work"),
    Page("my-work", "/labeling/mine", "labeling.work"),
    # Its Submit is checked when an item is left for the role (the demo's small seed may have none).
    Page(
        "labeling-item", "/labeling/queues/{work_queue}/work", "labeling.work", ready=".item-panel.active:not(.start)"
    ),
    Page("review-list", "/labeling/queues/{queue}/review", "labeling.manage"),
    Page("review-item", "/labeling/items/{review_item}/review", "labeling.manage", primary=True),
    Page("agreement", "/labeling/queues/{queue}/agreement", "labeling.manage"),
    Page("annotators", "/labeling/queues/{queue}/annotators", "labeling.manage"),
    Page("rubrics-and-queues", "/labeling/build/", "labeling.manage"),
    Page("rubric-new", "/labeling/rubrics/new", "labeling.manage", primary=True),
    Page("rubric-history", "/labeling/rubrics/{schema}/", "labeling.manage"),
    Page("rubric-edit", "/labeling/rubrics/{schema}/edit", "labeling.manage", primary=True),
    Page("queue-new", "/labeling/queues/new", "labeling.manage", primary=True),
    Page("queue-settings", "/labeling/queues/{queue}/settings", "labeling.manage", primary=True),
    Page("conversations", "/conversations/", "conversations.read"),
    Page("conversation", "/conversations/{conversation}/", "conversations.read"),
    Page("approvals-inbox", "/escalations/", "actions.decide"),
    Page("action", "/escalations/actions/{action}/", "actions.read"),
    Page("escalations-dashboard", "/escalations/dashboard/?project={project}", "escalations.manage"),
    Page("policy", "/escalations/policy/?project={project}", "escalations.manage"),
    Page("ladders", "/escalations/ladders/?project={project}", "escalations.manage", primary=True),
    Page("ladder-new", "/escalations/ladders/new?project={project}", "escalations.manage", primary=True),
    # The demo's finance ladder: a role tier, then named users who must both approve.
    Page("ladder-edit", "/escalations/ladders/finance/?project={project}", "escalations.manage", primary=True),
    Page("webhooks", "/escalations/settings/webhooks/", "webhooks.manage"),
    Page("calibration-index", "/evaluation/?project={project}", "evaluation.read"),
    Page("calibration", "/evaluation/calibration/?project={project}", "evaluation.read"),
    Page("datasets", "/evaluation/datasets/?project={project}", "datasets.read"),
    Page("dataset", "/evaluation/datasets/{dataset}/", "datasets.read"),
    Page("dataset-runs", "/evaluation/datasets/{dataset}/runs/", "datasets.read"),
    Page("dataset-run", "/evaluation/datasets/{dataset}/runs/{run}/", "datasets.read"),
    Page("dataset-run-compare", "/evaluation/datasets/{dataset}/runs/{run}/compare-previous", "datasets.read"),
    Page("members", "/settings/members/", "members.manage", primary=True),
    Page("projects", "/projects/", "projects.manage"),
    Page("project-new", "/projects/new", "projects.manage"),
    Page("api-keys", "/settings/api-keys/", "api_keys.manage", primary=True),
    Page("tokens", "/settings/tokens/", None),
    Page("api-docs", "/api/docs/", "conversations.read", ready=".opblock"),
]

# Measured in the page: the document's overflow, and where each primary action sits (its top
# and bottom in document coordinates, so scrolling does not change the answer).
MEASURE = """() => {
  const doc = document.scrollingElement;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className ? "." + el.className.split(" ").join(".") : "");
  const primaries = [...document.querySelectorAll("[data-primary]")]
    .filter((el) => el.getClientRects().length > 0)
    .map((el) => {
      const r = el.getBoundingClientRect();
      const bar = el.closest("[data-sticky-actions]") || el;
      return {text: el.textContent.trim().slice(0, 40), top: r.top + window.scrollY, bottom: r.bottom + window.scrollY,
              left: r.left, right: r.right, fixed: getComputedStyle(bar).position === "fixed"};
    });
  const wide = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 1).slice(0, 3).map(describe);
  // The top bar's links on one line: the row no taller than its tallest link (hidden on a phone).
  const nav = document.querySelector(".topbar nav[aria-label=Main]");
  const links = nav ? [...nav.children].filter((el) => el.getClientRects().length > 0) : [];
  const navWraps = links.length > 0
    && nav.getBoundingClientRect().height > Math.max(...links.map((el) => el.getBoundingClientRect().height)) + 1;
  return {scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, primaries, wide, navWraps};
}"""


def _ids() -> dict[str, object]:
    queue = Queue.objects.filter(project__slug=DEMO_PROJECT).order_by("pk").first()
    # The labeling page needs an item left to label; the demo labels its first queue through.
    work_queue = (
        Queue.objects.filter(project__slug=DEMO_PROJECT, items__status=ItemStatus.OPEN)
        .annotate(n=Count("items"))
        .order_by("-n", "pk")
        .first()
    )
    review_item = next(iter(labeling_selectors.review_items(queue=queue)))
    # One at the first tier, which the approver may decide: its page then has an Approve button.
    action = Action.objects.filter(project__slug=DEMO_PROJECT, status="pending", tier=0).order_by("pk").first()
    run = DatasetRun.objects.filter(dataset__project__slug=DEMO_PROJECT).order_by("-pk").first()
    return {
        "queue": queue.pk,
        "work_queue": work_queue.pk,
        "review_item": review_item.pk,
        "conversation": Conversation.objects.filter(project__slug=DEMO_PROJECT).order_by("pk").first().pk,
        "action": (action or Action.objects.order_by("pk").first()).pk,
        "schema": LabelSchema.objects.filter(project__slug=DEMO_PROJECT).order_by("pk").first().pk,
        "project": DEMO_PROJECT,
        # The demo's golden dataset and its newest gate run (the failing candidate).
        "dataset": run.dataset_id,
        "run": run.pk,
    }


def _watch(page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None,
    )
    # ERR_ABORTED is a request cut short by this test moving on to the next page, not a failure.
    page.on(
        "requestfailed",
        lambda r: None if "ERR_ABORTED" in r.failure else problems.append(f"failed {r.method} {r.url}: {r.failure}"),
    )


def _check(page, spec: Page, size: tuple[int, int]) -> list[str]:
    width, height = size
    found = page.evaluate(MEASURE)
    problems = []
    if found["scrollWidth"] > found["clientWidth"] + 1:
        problems.append(f"overflows: {found['scrollWidth']} px wide in {found['clientWidth']} ({found['wide']})")
    if width >= 1366 and found["navWraps"]:
        problems.append("the top bar's links wrap onto a second line")
    if spec.primary and not found["primaries"]:
        problems.append("no visible [data-primary] action")
    for p in found["primaries"]:
        on_screen = p["fixed"] or (p["top"] >= 0 and p["bottom"] <= height)
        if not on_screen or p["left"] < 0 or p["right"] > width:
            problems.append(f"primary action {p['text']!r} off the first screen: {p}")
    return problems


def test_every_page_fits_every_role_at_laptop_and_phone_sizes(browser, live_server, settings):
    started = time.monotonic()
    settings.DEBUG = True  # seed_demo refuses to seed a production database
    call_command("seed_demo", conversations=80, retail_conversations=5, stdout=open("/dev/null", "w"))  # noqa: SIM115
    ids = _ids()
    started = time.monotonic()
    settings.DEBUG = False
    failures: list[str] = []
    for role in ROLES:
        context = browser.new_context(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        _watch(page, problems)
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", role)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        folder = SCREENSHOTS / role
        folder.mkdir(parents=True, exist_ok=True)
        for spec in PAGES:
            if spec.capability is not None and spec.capability not in CAPABILITIES[role]:
                continue
            problems.clear()
            page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
            response = page.goto(live_server.url + spec.path.format(**ids))
            if spec.ready:
                page.wait_for_selector(spec.ready)
            # htmx requests the page starts on load (the home page's queue table) are part of it.
            page.wait_for_function("() => !document.querySelector('.htmx-request')")
            if response.status != 200:
                problems.append(f"answered {response.status}")
            if spec.name == "home":
                # The links fold behind "Menu" below 1280 px (a 1280 x 800 laptop is the narrowest
                # screen that gets them in a row) and fit one line from there.
                page.set_viewport_size({"width": 1280, "height": 800})
                if page.evaluate(MEASURE)["navWraps"]:
                    problems.append("1280 px: the top bar's links wrap onto a second line")
                page.set_viewport_size({"width": 1279, "height": 800})
                if not page.is_visible(".nav-menu > summary"):
                    problems.append("1279 px: the links are not folded behind Menu")
            for size in SIZES:
                page.set_viewport_size({"width": size[0], "height": size[1]})
                page.evaluate("window.scrollTo(0, 0)")
                problems.extend(f"{size[0]} px: {p}" for p in _check(page, spec, size))
                page.screenshot(path=str(folder / f"{spec.name}-{size[0]}.png"), full_page=True)
            failures.extend(f"{role} {spec.name}: {p}" for p in problems)
        context.close()
    elapsed = time.monotonic() - started
    (SCREENSHOTS / "problems.txt").write_text("\n".join(failures) + f"\n{elapsed:.1f} s\n")
    assert failures == []
