"""`manage.py devserver` (`make dev`): Django's autoreloading server plus the in-process jobs.

For editing code. It holds each kept-alive connection for about 45 ms per request, so measure
and demo with `serve` (`make run`), which is gunicorn.
"""

from __future__ import annotations

from django.contrib.staticfiles.management.commands.runserver import Command as RunserverCommand

from reviewapp.management.commands._serving import banner_write, scheduler_start


class Command(RunserverCommand):
    help = "Run the autoreloading development server; without REDIS_URL also run periodic jobs in-process."

    def inner_run(self, *args: object, **options: object) -> None:
        # With the autoreloader this runs in the child process only, so the scheduler and the
        # banner are not duplicated by the watcher process.
        scheduler_start()
        host = f"[{self.addr}]" if self._raw_ipv6 else self.addr
        banner_write(self.stdout.write, url=f"http://{host}:{self.port}/")
        super().inner_run(*args, **options)
