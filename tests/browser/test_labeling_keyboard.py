"""An annotator labels by keyboard alone in Chromium: digits pick, Enter submits and the next
(prefetched) item appears without a page load, `?` shows the shortcuts, `s` skips."""

from __future__ import annotations

import pytest

from labeling import services
from labeling.models import Assignment, AssignmentStatus, Label, QueueItem
from tests.browser.conftest import login
from tests.factories import DEFAULT_PASSWORD, ConversationFactory
from tests.labeling.factories import make_queue

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]


def _conversation(project, n: int):
    return ConversationFactory(
        project=project,
        external_id=f"kb-{n}",
        messages=[
            {"role": "user", "content": f"Question number {n}: where is my refund?"},
            {"role": "assistant", "content": f"Answer number {n}: it was issued on **Monday**."},
            {"role": "user", "content": "Thanks."},
        ],
    )


def _active(page, item_id: int) -> None:
    page.wait_for_selector(f'#work-area > .item-panel.active[data-item="{item_id}"]')


def test_annotator_labels_three_items_by_keyboard_alone(page, live_server, project, member):
    annotator = member("annotator", username="kim")
    queue = make_queue(project)  # quality (single choice), helpfulness (rating 1-5), notes (text)
    services.queue_items_add(queue=queue, conversation_ids=[_conversation(project, n).pk for n in range(4)], user=None)
    items = list(QueueItem.objects.filter(queue=queue).order_by("id").values_list("pk", flat=True))
    login(page, live_server, "kim", DEFAULT_PASSWORD)
    # Home lists the annotator's queues (loaded by htmx); start from there.
    page.wait_for_selector(f'table.queues a[href="/labeling/queues/{queue.pk}/work"]')

    page.goto(f"{live_server.url}/labeling/queues/{queue.pk}/work")
    _active(page, items[0])
    page.evaluate("window.__marker = 1")
    # The next item is leased and rendered in the background, hidden until it is needed.
    page.wait_for_selector(f'#work-area > .item-panel.prefetched[data-item="{items[1]}"]', state="attached")
    assert page.locator(".item-panel.active .question.current").get_attribute("data-key") == "quality"

    # j/k move through the transcript's turns.
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator(".item-panel.active article.turn.highlight").get_attribute("data-turn") == "1"
    page.keyboard.press("k")
    assert page.locator(".item-panel.active article.turn.highlight").get_attribute("data-turn") == "0"

    plan = [
        (items[0], ["1", "4"], {"quality": "good", "helpfulness": 4}),
        (items[1], ["2"], {"quality": "bad"}),
        (items[2], ["2", "1"], {"quality": "bad", "helpfulness": 1}),
    ]
    for n, (item_id, keys, _) in enumerate(plan):
        _active(page, item_id)
        # Each next item is prefetched while this one is on screen, so Enter shows it at once.
        page.wait_for_selector(f'#work-area > .item-panel.prefetched[data-item="{items[n + 1]}"]', state="attached")
        for key in keys:
            page.keyboard.press(key)
        shown = items[n + 1]
        with (
            page.expect_response(lambda r, i=item_id: r.url.endswith(f"/labeling/items/{i}/submit")) as response,
            page.expect_response(lambda r, i=shown: r.url.endswith(f"/next?exclude={i}")) as prefetch,
        ):
            page.keyboard.press("Enter")
        assert response.value.status == 200
        assert response.value.text() == ""  # the browser already showed the prefetched item
        # ...and once the label is in, it prefetches the one after (none after the last: 204).
        assert prefetch.value.status == (204 if shown == items[-1] else 200)

    _active(page, items[3])
    assert page.inner_text("#session-count") == "3"

    page.keyboard.press("?")
    assert page.is_visible("#shortcuts")
    assert "Skip this item" in page.inner_text("#shortcuts")
    page.keyboard.press("?")
    assert not page.is_visible("#shortcuts")

    with page.expect_response(lambda r: r.url.endswith(f"/labeling/items/{items[3]}/skip")) as response:
        page.keyboard.press("s")
    assert response.value.status == 200
    page.wait_for_selector("#work-area > .item-panel.active.done")

    # One page load for the whole session: the marker set after the first load survived, and
    # every finished item's panel has left the page.
    assert page.evaluate("window.__marker") == 1
    assert page.locator("#work-area > .item-panel").count() == 1
    labels = {label.item_id: label for label in Label.objects.filter(user=annotator)}
    assert {item_id: labels[item_id].answers for item_id in labels} == {
        item_id: answers for item_id, _, answers in plan
    }
    assert all(label.time_spent_ms is not None and label.time_spent_ms > 0 for label in labels.values())
    assert Assignment.objects.get(item_id=items[3], user=annotator).status == AssignmentStatus.SKIPPED


def test_typing_in_a_text_box_does_not_trigger_shortcuts(page, live_server, project, member):
    annotator = member("annotator", username="lee")
    queue = make_queue(project)
    services.queue_items_add(queue=queue, conversation_ids=[_conversation(project, 0).pk], user=None)
    [item_id] = QueueItem.objects.filter(queue=queue).values_list("pk", flat=True)
    login(page, live_server, "lee", DEFAULT_PASSWORD)
    page.wait_for_selector("table.queues")
    page.goto(f"{live_server.url}/labeling/queues/{queue.pk}/work")
    _active(page, item_id)

    page.keyboard.press("1")
    page.click(".item-panel.active textarea[name=a-notes]")
    with page.expect_response(lambda r: r.url.endswith(f"/labeling/items/{item_id}/draft")) as draft:
        page.keyboard.type("s 2 ? j")
        page.keyboard.press("Enter")  # a new line, not a submit
    assert draft.value.status == 204  # autosaved after typing stopped
    assert Assignment.objects.get(user=annotator).draft_answers == {"quality": "good", "notes": "s 2 ? j"}
    assert not page.is_visible("#shortcuts")
    assert page.locator(".item-panel.active input[name=a-quality][value=good]").is_checked()
    assert Label.objects.count() == 0
    assert Assignment.objects.get(user=annotator).status == AssignmentStatus.ACTIVE

    with page.expect_response(lambda r: r.url.endswith(f"/labeling/items/{item_id}/submit")):
        page.keyboard.press("Control+Enter")
    page.wait_for_selector("#work-area > .item-panel.active.done")
    assert Label.objects.get(user=annotator).answers == {"quality": "good", "notes": "s 2 ? j"}
