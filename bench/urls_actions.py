"""The app's URLs plus `/bench/bare`: a Django view that answers a small JSON object and touches
nothing (no database, no authentication, no body parsing), through the same middleware and the
same gunicorn as the API. `/healthz` is not that: it runs a database query and pings Redis."""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from reviewapp.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/bare", bare), *app_urlpatterns]
