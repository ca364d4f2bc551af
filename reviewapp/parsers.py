"""The API's one JSON parser: bounded size, depth, no NUL, no NaN or infinity (validation.py)."""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import BaseParser

from reviewapp import validation
from reviewapp.errors import PayloadTooLarge


class BoundedJSONParser(BaseParser):
    """Replaces DRF's JSONParser, which decodes with the stdlib: recursive (a 500 at depth
    10,000), NaN and `1e400` accepted as floats, NUL accepted in strings. Errors are 400s
    naming the field (`answers.a[2]`); a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 (DRF
    reads the stream itself, past Django's own check)."""

    media_type = "application/json"

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Any = None) -> Any:
        if stream is None:
            return {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is over the {limit}-byte limit.")
        return validation.json_loads(body)
