"""The pages of a pairwise comparison: the labeling page shows the input and both outputs side
by side, hostile text escaped, with the pairwise options on keys 1-4; the result page shows the
win rate, the intervals as SVG and the per-segment table; both stay inside the tenant."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from evaluation import services_pairwise
from labeling import pairwise as sides
from labeling import services as labeling_services
from labeling.models import PairwiseItem
from tests.evaluation.factories_pairwise import make_pairwise_run, make_pairwise_version

pytestmark = pytest.mark.django_db
XSS = "<script>window.__xss=1</script>"


def _comparison(project):
    dataset, version, _ = make_pairwise_version(project, keys=["a", "b"], tags={"a": ["billing"]})
    baseline = make_pairwise_run(dataset, version, {"a": f"old {XSS}", "b": "old b"}, agent_version="v1")
    candidate = make_pairwise_run(
        dataset, version, {"a": {"role": "assistant", "content": f"new {XSS}"}, "b": "new b"}, agent_version="v2"
    )
    return services_pairwise.pairwise_from_runs(
        dataset=dataset,
        baseline_run=baseline,
        candidate_run=candidate,
        settings=services_pairwise.settings_parse({"seed": 1}, default_name="v2 vs v1"),
    )


def test_the_labeling_page_shows_both_outputs_side_by_side_escaped(project, browser_for):
    comparison = _comparison(project)
    client = browser_for("annotator")
    assignment = labeling_services.item_claim(queue=comparison.queue, user=client.user)
    pair = PairwiseItem.objects.get(item=assignment.item)
    assert pair.key == "a"  # the item whose outputs are hostile

    html = client.get(f"/labeling/queues/{comparison.queue_id}/work").content.decode()

    assert 'class="pairwise"' in html
    assert 'aria-label="Answer A"' in html and 'aria-label="Answer B"' in html
    assert XSS not in html
    side_a = html[html.index('aria-label="Answer A"') : html.index('aria-label="Answer B"')]
    side_b = html[html.index('aria-label="Answer B"') :]
    assert escape(pair.left_output[0]["content"]) in side_a
    assert escape(pair.right_output[0]["content"]) in side_b
    assert f"question {pair.key}" in html  # the input above
    # The four options on keys 1-4; the candidate's side is never on the page.
    for digit, option in zip("1234", sides.OPTIONS, strict=True):
        assert f'value="{option}" data-kbd="{digit}"' in html
    assert "candidate" not in html.lower()


def test_the_result_page_shows_the_win_rate_intervals_and_segments(project, browser_for, member):
    comparison = _comparison(project)
    annotator = member("annotator")
    for pair in PairwiseItem.objects.filter(item__queue=comparison.queue).select_related("item__queue"):
        labeling_services.item_claim(queue=comparison.queue, user=annotator)
        labeling_services.label_submit(
            item=pair.item,
            user=annotator,
            answers={"overall": "A better" if pair.candidate_side == "left" else "B better"},
        )
    client = browser_for("engineer")

    response = client.get(f"/evaluation/pairwise/{comparison.queue_id}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "v2 against v1" in html
    assert "<svg" in html and "Wilson, decisive pairs" in html
    assert "100%" in html  # both items won by the candidate
    assert '<td class="mono">billing' in html
    assert "<script>" not in html.split("</head>")[1]


def test_the_result_page_is_for_engineers_of_the_organization(project, browser_for, other_org):
    comparison = _comparison(project)
    url = f"/evaluation/pairwise/{comparison.queue_id}/"
    assert browser_for("annotator").get(url).status_code == 403
    assert browser_for("engineer", organization=other_org).get(url).status_code in (403, 404)
