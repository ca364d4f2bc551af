"""A reviewer rules on disputed items by keyboard alone in Chromium: the unanimous answer is
already chosen, a digit picks the disputed one, Enter records it and the next waiting item
appears; after the last, the list says nothing is waiting."""

from __future__ import annotations

import pytest

from labeling import services
from labeling.models import ItemStatus, QueueItem
from tests.browser.conftest import login
from tests.factories import DEFAULT_PASSWORD
from tests.labeling.factories import add_items, make_queue

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent, pytest.mark.django_db(transaction=True)]


def test_reviewer_records_final_answers_by_keyboard_and_moves_on(page, live_server, project, member):
    member("engineer", username="rita")
    queue = make_queue(project, annotations_per_item=2)
    items = add_items(queue, 2)
    for answer in ("good", "bad"):
        annotator = member("annotator")
        for item in items:
            services.item_claim(queue=queue, user=annotator)
            services.label_submit(item=item, user=annotator, answers={"quality": answer, "helpfulness": 4})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, live_server, "rita", DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/labeling/queues/{queue.pk}/review")
    assert "Was the answer right?" in page.inner_text("td.disagree")
    page.click(f'a[href="/labeling/items/{items[0].pk}/review"]')
    page.wait_for_url(f"**/labeling/items/{items[0].pk}/review")
    # helpfulness was unanimous (4): pre-filled; the current question is the disputed one.
    assert page.locator("input[name=a-helpfulness][value='4']").is_checked()
    assert page.locator(".label-form .question.current").get_attribute("data-key") == "quality"
    page.keyboard.press("?")
    assert page.is_visible("#shortcuts")
    page.keyboard.press("Escape")
    assert not page.is_visible("#shortcuts")

    page.keyboard.press("2")  # bad
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/labeling/items/{items[1].pk}/review?reviewed={items[0].pk}")
    page.keyboard.press("1")  # good
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/labeling/queues/{queue.pk}/review?reviewed={items[1].pk}")

    assert "every item with two or more labels was agreed on" not in page.inner_text("main")
    assert "ruled on by a reviewer" in page.inner_text("main")
    finals = dict(QueueItem.objects.filter(queue=queue).values_list("pk", "final_answers"))
    assert finals == {
        items[0].pk: {"quality": "bad", "helpfulness": 4},
        items[1].pk: {"quality": "good", "helpfulness": 4},
    }
    assert set(QueueItem.objects.filter(queue=queue).values_list("status", flat=True)) == {ItemStatus.COMPLETED}
    assert errors == []
