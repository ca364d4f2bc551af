from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from reviewapp import services
from reviewapp.models import PersonalToken
from reviewapp.tasks import personal_tokens_expire
from tests.factories import MembershipFactory


def _tokens(org):
    user = MembershipFactory(organization=org).user
    expired = services.personal_token_create(user=user, organization=org).record
    fresh = services.personal_token_create(user=user, organization=org).record
    PersonalToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    return expired, fresh


def test_personal_tokens_expire_revokes_only_expired_tokens(org):
    expired, fresh = _tokens(org)

    assert personal_tokens_expire.delay().get() == 1

    expired.refresh_from_db()
    fresh.refresh_from_db()
    assert expired.revoked_at is not None
    assert fresh.revoked_at is None


@pytest.mark.celery_worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_personal_tokens_expire_runs_on_a_real_celery_worker(real_celery, org):
    expired, fresh = _tokens(org)

    result = personal_tokens_expire.delay()

    assert result.get(timeout=60, disable_sync_subtasks=False) == 1
    expired.refresh_from_db()
    assert expired.revoked_at is not None
    fresh.refresh_from_db()
    assert fresh.revoked_at is None


def test_in_process_scheduler_runs_due_jobs_only(org):
    from reviewapp.scheduler import InProcessScheduler

    expired, _ = _tokens(org)
    scheduler = InProcessScheduler(
        {"expire": {"task": "reviewapp.tasks.personal_tokens_expire", "schedule": dt.timedelta(hours=1)}}
    )
    assert scheduler.run_pending() == []  # just started: nothing is due yet
    scheduler.entries[0]["last"] = timezone.now() - dt.timedelta(hours=2)
    assert scheduler.run_pending() == ["expire"]
    expired.refresh_from_db()
    assert expired.revoked_at is not None
