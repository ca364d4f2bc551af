"""Verifying the decision webhooks reviewapp sends to an action's `callback_url`.

The server signs every delivery like Stripe does: `X-Reviewapp-Signature: t=<unix time>,v1=<hex>`
where the hex is HMAC-SHA256 with the project's webhook secret over `f"{t}.{body}"` (the raw
body bytes). While a secret is being rotated a delivery carries one `v1=` per valid secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

from reviewapp_client.errors import InvalidSignature

SIGNATURE_HEADER = "X-Reviewapp-Signature"
DEFAULT_TOLERANCE = 300
# A header is a handful of short fields; refuse anything much larger before parsing it.
_MAX_HEADER = 8192
_HEX = frozenset("0123456789abcdef")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(_as_bytes(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: str | bytes, body: str | bytes, *, timestamp: int | None = None) -> str:
    """The `X-Reviewapp-Signature` value the server would send for `body`: for testing your
    receiver without a server."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_signature(secret, t, _as_bytes(body))}"


def verify_webhook(
    secrets: str | bytes | Iterable[str | bytes],
    header: str | None,
    body: str | bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and return its parsed JSON body.

    `secrets` is your webhook secret, or several (during a rotation, accept the old and the
    new one). `header` is the `X-Reviewapp-Signature` value and `body` the raw request body,
    exactly as received (verify before parsing: re-serialised JSON would not match). A
    timestamp further than `tolerance` seconds from `now` (default: the current time) is
    refused, so a captured delivery cannot be replayed later; deduplicate on the delivery id
    for replays inside the window. Raises `InvalidSignature`."""
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    keys = [s for s in secrets if s]
    if not keys:
        raise InvalidSignature("No webhook secret to verify with.")
    if not header or not isinstance(header, str):
        raise InvalidSignature(f"Missing {SIGNATURE_HEADER} header.")
    if len(header) > _MAX_HEADER:
        raise InvalidSignature(f"{SIGNATURE_HEADER} header is too long.")

    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            value = value.strip()
            # ASCII digits only: int() would also take "+1", " 1", "1_000" and other scripts' digits.
            # One timestamp only: with two, which one was signed would be the parser's guess.
            if timestamp is not None or not (value.isascii() and value.isdigit()) or len(value) > 15:
                raise InvalidSignature("Malformed timestamp in the signature header.")
            timestamp = int(value)
        elif key == "v1":
            value = value.strip().lower()
            # Only well-formed hex is compared (compare_digest raises on non-ASCII text).
            if len(value) == 64 and all(c in _HEX for c in value):
                candidates.append(value)
    if timestamp is None:
        raise InvalidSignature("No timestamp (t=) in the signature header.")
    if not candidates:
        raise InvalidSignature("No v1 signature in the signature header.")

    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(f"Timestamp is outside the {tolerance:g} s tolerance window.")

    raw = _as_bytes(body)
    expected = [_signature(key, timestamp, raw) for key in keys]
    # Compare every pair in constant time per pair; no early exit on the first match's position.
    matched = False
    for signature in expected:
        for candidate in candidates:
            matched |= hmac.compare_digest(signature, candidate)
    if not matched:
        raise InvalidSignature("No signature matches the webhook secret.")

    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSignature("The signed body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise InvalidSignature("The signed body is not a JSON object.")
    return payload
