"""An export as an HTTP response, shared by the API and the browser download: streamed one
batch at a time under WSGI and ASGI alike, headers only for HEAD."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from evaluation import exports


def _next_or_none(iterator: Iterator[bytes]) -> bytes | None:
    return next(iterator, None)


async def _pulled(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Under ASGI Django would read a sync iterator to the end into a list before sending a
    byte (StreamingHttpResponse.__aiter__): pull one chunk at a time instead, in the thread the
    request's database connection belongs to."""
    iterator = iter(chunks)
    step = sync_to_async(_next_or_none, thread_sensitive=True)
    try:
        while (chunk := await step(iterator)) is not None:
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()


def export_response(request: HttpRequest, *, fmt: str, stem: str, chunks: Iterable[bytes]) -> HttpResponseBase:
    """`chunks` is only started when the body is sent: nothing is read for a HEAD."""
    headers = {
        "Content-Disposition": f'attachment; filename="{exports.filename(stem, fmt)}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    content_type = exports.CONTENT_TYPES[fmt]
    if request.method == "HEAD":
        return HttpResponse(b"", content_type=content_type, headers=headers)
    body = _pulled(chunks) if isinstance(request, ASGIRequest) else chunks
    return StreamingHttpResponse(body, content_type=content_type, headers=headers)
