"""The ASGI entry point: `gunicorn reviewapp.asgi -k asgi` (docs/architecture.md, "Production
topology").

Requests the apps declare long polls (`hooks.on_long_poll`: an agent waiting up to a minute
for a decision) are answered by the app's async function directly, with no thread held while
they wait. Django's own handler would hold one twice over: the middleware chain is sync, so an
async view inside it runs through async_to_sync in a thread blocked for the whole wait; and
each request's `ThreadSensitiveContext` keeps a thread from its first sync call (the
`request_started` receivers) to its end. Long polls skip both: their few thread-sensitive calls
(the signals, closing the response) share one process-wide thread, and their database reads
use a small pool of the app's own. Every other request is served exactly as Django does.
"""

import os

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.urls import set_urlconf

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
# Under ASGI a sync view's connection belongs to a thread that ends with its request, so a
# persistent one is never reused, only left open until collected (Django's advice: no persistent
# connections under ASGI). Waits close theirs anyway; this covers every other request.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")


class ReviewappASGIHandler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self._long_poll(scope) is not None:
            await self.handle(scope, receive, send)  # without ThreadSensitiveContext
            return
        await super().__call__(scope, receive, send)

    @staticmethod
    def _long_poll(scope):
        from reviewapp import hooks

        return hooks.long_poll_serve(scope.get("method", ""), scope.get("path", ""), scope.get("query_string", b""))

    async def get_response_async(self, request):
        from reviewapp import hooks

        serve = hooks.long_poll_serve(
            request.method or "", request.path_info, request.META.get("QUERY_STRING", "").encode("latin-1")
        )
        if serve is None:
            return await super().get_response_async(request)
        set_urlconf(settings.ROOT_URLCONF)
        response = await serve(request)
        response._resource_closers.append(request.close)
        return response


django.setup(set_prefix=False)
application = ReviewappASGIHandler()
