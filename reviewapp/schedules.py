"""Every periodic job in one place. Celery beat reads BEAT_SCHEDULE in production; without
Redis, `manage.py serve` runs the same entries from an in-process scheduler."""

from __future__ import annotations

from datetime import timedelta

BEAT_SCHEDULE: dict[str, dict] = {
    # Expired personal tokens are dead already (auth checks expiry); sweeping them daily keeps
    # the token table small and the audit trail honest about when access ended.
    "personal-tokens-expire": {
        "task": "reviewapp.tasks.personal_tokens_expire",
        "schedule": timedelta(hours=24),
    },
    # Claims return expired leases on their way, but a queue nobody is claiming from would
    # keep stale leases (and wrong "in progress" counts) until someone comes back.
    "labeling-leases-expire": {
        "task": "labeling.tasks.leases_expire",
        "schedule": timedelta(minutes=1),
    },
    # Sampling work is recorded (labeling.SamplingBatch) in the ingest transaction and enqueued
    # after commit; this re-enqueues what a broker outage left behind, and failed runs once
    # their backoff (2 minutes doubling to an hour) has passed. Every minute: a conversation
    # waits at most a couple of minutes past an outage to be sampled.
    "labeling-sampling-sweep": {
        "task": "labeling.tasks.sampling_batches_sweep",
        "schedule": timedelta(minutes=1),
    },
    # Backfills re-enqueue themselves step by step; this restarts any chain a crash, deploy or
    # broker outage stopped (its heartbeat is stale), and never a live one.
    "labeling-backfills-resume": {
        "task": "labeling.tasks.backfills_resume",
        "schedule": timedelta(minutes=5),
    },
    # Statistics snapshots: re-enqueue refreshes a crash or deploy lost, and refresh stale
    # snapshots of active queues (labels changed since) so the agreement and annotators pages
    # open on figures minutes old. A queue without new labels costs one index probe.
    "labeling-agreement-snapshots-sweep": {
        "task": "labeling.tasks.agreement_snapshots_sweep",
        "schedule": timedelta(minutes=10),
    },
    # The budget controller follows each opted-in queue's judge calibration, a daily figure:
    # once a day is as often as a step (a 30-day window by default) could ever be earned.
    # Yesterday's calibration per judge, criterion and version (a week of pairs each): the
    # budget controller's history, the cheap trend, and the below-bar alerts. Daily, as the
    # controller reads it; a rerun of the same day rewrites the same rows and alerts nothing.
    "evaluation-calibration-snapshots": {
        "task": "evaluation.tasks.calibration_snapshots_take",
        "schedule": timedelta(hours=24),
    },
    "labeling-budget-controllers": {
        "task": "labeling.tasks.budget_controllers_run",
        "schedule": timedelta(hours=24),
    },
    # Tier timeouts are minutes to hours; every 15 s a due action moves on within 15 s of its
    # due time. A sweep with nothing due is one probe of the partial index action_pending_due.
    "escalations-actions-timeout": {
        "task": "escalations.tasks.actions_timeout_sweep",
        "schedule": timedelta(seconds=15),
    },
    # Webhook deliveries are recorded with the decision or tier change and sent after commit;
    # this sends those whose retry time came (backoff: escalations/services/webhooks.py) and any
    # whose first message was lost. Every 30 s: retries go out within 30 s of their time.
    "escalations-webhook-deliveries-due": {
        "task": "escalations.tasks_webhooks.deliveries_due_sweep",
        "schedule": timedelta(seconds=30),
    },
}
