"""The gate-run pages: who may open them, tenants, the verdict and reasons shown, hostile agent
versions and outputs escaped, and the comparison ordered regressions first."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.evaluation.factories_runs import make_run, make_version

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("v")</script>'


@pytest.fixture
def runs(project):
    items = [{"key": "a", "tags": ["billing"]}, {"key": "b", "critical": True}, {"key": "c"}]
    dataset, version = make_version(project, items=items)
    first = make_run(dataset, version, {"a": True, "b": True, "c": True}, agent_version="v1")
    second = make_run(dataset, version, {"a": False, "b": True}, agent_version=HOSTILE)
    return dataset, first, second


def test_runs_list_and_section(browser_for, runs):
    dataset, _, _ = runs
    engineer = browser_for("engineer")

    page = engineer.get(f"/evaluation/datasets/{dataset.pk}/runs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.findall(r'data-gate="(\w+)"', html) == ["fail", "pass"]  # newest first
    assert HOSTILE not in html
    assert "&lt;script&gt;" in html
    section = engineer.get(f"/evaluation/datasets/{dataset.pk}/runs/section")
    assert section.status_code == 200
    assert b"<html" not in section.content
    assert b'id="runs"' in section.content


def test_run_page_shows_the_verdict_reasons_and_segments(browser_for, runs):
    dataset, _, second = runs
    html = browser_for("admin").get(f"/evaluation/datasets/{dataset.pk}/runs/{second.pk}/").content.decode()

    assert 'data-gate="fail"' in html
    assert "Pass rate 33.33% (1 of 3) is below the target 95.00%." in html
    assert "1 item(s) have no result and count as failed: c." in html
    assert re.search(r'id="segments".*billing', html, re.S)
    assert HOSTILE not in html


def test_compare_page_lists_regressions_first(browser_for, runs):
    dataset, first, second = runs
    engineer = browser_for("engineer")
    html = engineer.get(f"/evaluation/datasets/{dataset.pk}/runs/compare/?a={first.pk}&b={second.pk}").content.decode()

    assert re.findall(r'data-change="(\w+)"', html) == ["regression", "regression"]
    assert "2 regression(s), 0 fix(es), 0 still failing, 1 still passing." in html
    previous = engineer.get(f"/evaluation/datasets/{dataset.pk}/runs/{second.pk}/compare-previous")
    assert previous.status_code == 302
    assert previous["Location"].endswith(f"/runs/compare/?a={first.pk}&b={second.pk}")
    assert engineer.get(f"/evaluation/datasets/{dataset.pk}/runs/{first.pk}/compare-previous").status_code == 404
    assert engineer.get(f"/evaluation/datasets/{dataset.pk}/runs/compare/?a=x&b=1").status_code == 400
    assert engineer.get(f"/evaluation/datasets/{dataset.pk}/runs/compare/?a={first.pk}").status_code == 400


def test_roles_and_tenants(browser_for, runs, other_org):
    dataset, first, _ = runs
    pages = [
        f"/evaluation/datasets/{dataset.pk}/runs/",
        f"/evaluation/datasets/{dataset.pk}/runs/section",
        f"/evaluation/datasets/{dataset.pk}/runs/{first.pk}/",
        f"/evaluation/datasets/{dataset.pk}/runs/compare/?a={first.pk}&b={first.pk}",
    ]
    annotator = browser_for("annotator")
    stranger = browser_for("admin", organization=other_org)
    for url in pages:
        assert annotator.get(url).status_code == 403, url
        assert stranger.get(url).status_code == 404, url
    assert Client().get(pages[0]).status_code == 302  # to the login page
