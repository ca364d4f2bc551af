"""`manage.py serve` (`make run`): gunicorn in one process with threads, plus the in-process jobs.

The embedded default (SQLite, no Redis) is served by the production server rather than Django's
development server, which costs about 45 ms per request on a kept-alive connection (every
browser and SDK session; bench/RESULTS.md). One process, because without Redis the periodic jobs
run in a thread of the serving process and must run exactly once; threads, because a request
mostly waits on SQLite or the client. `gunicorn.conf.py` (garbage-collector tuning) applies as it
does in production. `devserver` (`make dev`) keeps the autoreloader for editing code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.wsgi import get_wsgi_application
from django.db import connections
from gunicorn.app.base import Application

from reviewapp.management.commands._serving import banner_write, scheduler_start

GUNICORN_CONF = Path(settings.BASE_DIR) / "gunicorn.conf.py"


class EmbeddedServer(Application):
    """gunicorn configured from arguments, not from the command line it was started with."""

    def __init__(self, *, bind: str, threads: int, write: Any) -> None:
        self.bind = bind
        self.threads = threads
        self.write = write
        super().__init__()

    def load_config(self) -> None:
        if GUNICORN_CONF.exists():
            self.load_config_from_file(str(GUNICORN_CONF))
        tuned_worker_init = self.cfg.post_worker_init

        def post_worker_init(worker: Any) -> None:
            tuned_worker_init(worker)
            # The one worker process is the one that runs the jobs; the arbiter only supervises.
            if scheduler_start():
                worker.log.info("Periodic jobs run in this worker (pid %s)", worker.pid)

        def when_ready(server: Any) -> None:
            # After binding, so the address printed is the one served (also with port 0).
            banner_write(self.write, url=f"{server.LISTENERS[0]}/")
            connections.close_all()  # the worker is forked next: it must open its own

        for key, value in {
            "bind": [self.bind],
            "workers": 1,
            "worker_class": "gthread",
            "threads": self.threads,
            "preload_app": True,
            "timeout": 60,
            "graceful_timeout": 10,
            # No proxy in front: browsers keep idle connections for minutes, and gunicorn's 2 s
            # default closes them under clients about to reuse them (a POST then fails with a
            # reset). An idle connection costs a file descriptor in the poller, not a thread.
            "keepalive": 75,
            # gunicorn's control socket is one path per user: a second `make run` would take it.
            "control_socket_disable": True,
            "post_worker_init": post_worker_init,
            "when_ready": when_ready,
        }.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIHandler:
        return get_wsgi_application()


class Command(BaseCommand):
    help = "Serve with gunicorn (1 process, threads); without REDIS_URL also run periodic jobs in-process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000", help="HOST:PORT (default 127.0.0.1:8000)")
        parser.add_argument("--threads", type=int, default=8, help="Request threads (default 8).")

    def handle(self, *args: object, addrport: str, threads: int, **options: object) -> None:
        host, sep, port = addrport.rpartition(":")
        if not sep or not port.isdigit():
            raise CommandError(f"Expected HOST:PORT, got '{addrport}'.")
        if threads < 1:
            raise CommandError("--threads must be at least 1.")

        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        connections.close_all()
        EmbeddedServer(bind=f"{host or '127.0.0.1'}:{port}", threads=threads, write=write).run()
