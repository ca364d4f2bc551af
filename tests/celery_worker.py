"""A real Celery worker process for the tests that need one (REDIS_URL set).

The worker runs against this test process's test database, on a queue of its own per xdist
worker, so parallel test processes never take each other's tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def webhook_queue(queue: str) -> str:
    """The webhooks queue that goes with a test worker's default queue (webhook sends are
    routed to a queue of their own: reviewapp.celery.route_task). A test sending tasks to the
    worker sets settings.WEBHOOK_CELERY_QUEUE to it."""
    return f"{queue}-webhooks"


def worker_start(*, queue: str, broker_url: str | None = None) -> tuple[subprocess.Popen, IO[str]]:
    """Start a Celery worker process on `queue` and its webhooks queue, as production's
    `-Q celery,webhooks`, against this test process's test database (call it with the
    database unblocked), and against `broker_url` if given (else REDIS_URL). Stop it with
    worker_stop."""
    settings_dict = connection.settings_dict
    db = settings_dict["NAME"]
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    env = dict(
        os.environ,
        DATABASE_URL=f"postgresql://{auth}{host}:{port}/{db}",
        CELERY_QUEUE=queue,
        WEBHOOK_CELERY_QUEUE=webhook_queue(queue),
    )
    if broker_url:
        env["REDIS_URL"] = broker_url
    log = open(ROOT / "var" / f"celery-{queue}.log", "w")  # noqa: SIM115 - closed by worker_stop
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "reviewapp",
            "worker",
            "--pool=solo",
            "-Q",
            f"{queue},{webhook_queue(queue)}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, log


def worker_stop(proc: subprocess.Popen, log: IO[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[str]:
    from reviewapp.celery import app

    queue = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"
    with django_db_blocker.unblock():
        proc, log = worker_start(queue=queue)
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = previous
        worker_stop(proc, log)


@pytest.fixture
def real_celery(celery_worker_process, settings) -> str:
    """Send tasks through Redis to the worker instead of running them in-process."""
    from reviewapp.celery import app

    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.WEBHOOK_CELERY_QUEUE = webhook_queue(celery_worker_process)
    yield celery_worker_process
    app.conf.task_always_eager = True
