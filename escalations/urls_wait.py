"""Where a wait is served: `ActionWaitMiddleware` (escalations/apis/waiting.py) resolves a
request that carries `wait` against this URLconf, so the path and its `<id:>` bounds are the
ones the plain GET (escalations/urls_api.py) declares. Not included in ROOT_URLCONF: without
`wait` the sync view answers."""

from django.urls import path

from escalations.apis import waiting
from reviewapp import converters  # noqa: F401 - registers <id:>

urlpatterns = [
    path("api/v1/actions/<id:action_id>", waiting.action_wait, name="action-wait"),
]
