"""labeling's hand-written statements (labeling/sql.py) as the running code sends them: through
Django's execute wrappers, where APM and debug tools see the hottest queries. The statements
themselves are prepared against the schema by tests/test_sql.py."""

from __future__ import annotations

import pytest
from django.db import connection

from labeling import services, sql
from tests.labeling.factories import add_items, make_queue

pytestmark = pytest.mark.django_db


def _statements_of(work) -> list[str]:
    seen: list[str] = []

    def record(execute, text, params, many, context):
        seen.append(text)
        return execute(text, params, many, context)

    with connection.execute_wrapper(record):
        work()
    return seen


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the claim as a request makes it: outside any transaction
def test_the_claim_statement_and_its_lock_pass_through_the_execute_wrappers(project, member):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    person = member("annotator")

    seen = _statements_of(lambda: services.item_claim(queue=queue, user=person))

    # The claim outside a transaction: precheck taking the claim lock, the relaxed lease, unlock.
    assert sql.CLAIM_PRECHECK_LOCKED["session"] in seen
    assert sql.LEASE_NEXT_RELAXED in seen
    assert seen.index(sql.CLAIM_PRECHECK_LOCKED["session"]) < seen.index(sql.LEASE_NEXT_RELAXED)
    assert seen[-1] == sql.CLAIM_UNLOCK
    assert item.assignments.get().user == person


def test_the_label_takes_its_locks_through_the_execute_wrappers(project, member):
    queue = make_queue(project)
    [item] = add_items(queue, 1)
    person = member("annotator")
    services.item_claim(queue=queue, user=person)

    seen = _statements_of(lambda: services.label_submit(item=item, user=person, answers={"quality": "good"}))

    assert seen.index(sql.ITEM_RELOCK) < seen.index(sql.ASSIGNMENT_AND_LABEL)
