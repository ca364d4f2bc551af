"""The calibration pages in Chromium: they render under the Content-Security-Policy without a
violation, the charts are drawn, and the trust preset is added to a queue from the page.
Screenshots go to $SHOTS_DIR when it is set (for looking at the pages)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labeling.models import Queue
from tests.browser.conftest import login
from tests.browser.test_content_security_policy import _violations, _watch
from tests.evaluation.factories import realistic_pairs
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]


def _shot(page, name: str) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_calibration_pages_under_the_policy(page, live_server, project, member):
    member("engineer", username="eve")
    queue, _ = realistic_pairs(project, 300)
    console = _watch(page)
    login(page, live_server, "eve", DEFAULT_PASSWORD)

    assert page.goto(f"{live_server.url}/evaluation/").status == 200
    assert page.locator("#judges tbody tr").count() == 1
    _shot(page, "cal-index")
    assert _violations(page, console) == []

    console.clear()
    page.click("#judges a")
    page.wait_for_load_state("networkidle")
    assert page.locator("figure.chart-box svg").count() == 2
    assert "fail" in page.locator("#signals").inner_text()
    page.click(".rule-offer summary")
    _shot(page, "cal-page")
    assert _violations(page, console) == []

    page.check("input[name=confirm]")
    page.click(".rule-offer button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Added to the sampling rules" in page.locator(".messages").inner_text()
    rules = Queue.objects.get(pk=queue.pk).sampling
    assert rules[-1]["if"]["judge"] == "gpt" and rules[-1]["if"]["criterion"] == "correctness"
    assert 0 < rules[-1]["if"]["confidence_below"] <= 1
    _shot(page, "cal-rule-added")
