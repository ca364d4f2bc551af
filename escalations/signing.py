"""Webhook signatures, Stripe-style. Pure: no Django, no database.

A delivery carries

    X-Reviewapp-Signature: t=1733740000,v1=5f1c...,v1=9a0b...
    X-Reviewapp-Delivery: 3f2a...   (the delivery id: the same on every retry; dedupe on it)
    X-Reviewapp-Event: action.decided

where each `v1` is the hex HMAC-SHA256, keyed with one of the project's webhook secrets, of
`f"{t}.{body}"` (the timestamp, a dot, and the raw request body, byte for byte). During a
rotation's grace period the old and the new secret both sign, so a receiver may switch secrets
whenever it likes. A receiver recomputes the HMAC over the body it received with the secret(s)
it holds and accepts when one matches and `t` is within the tolerance (300 s) of its clock:
the timestamp is signed, so a captured request cannot be replayed after the window, and a
receiver that also remembers delivery ids seen within the window refuses replays inside it.

The SDK's helper mirrors `verify`; keep the two in step.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "X-Reviewapp-Signature"
DELIVERY_HEADER = "X-Reviewapp-Delivery"
EVENT_HEADER = "X-Reviewapp-Event"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
# A header is a handful of signatures; anything much longer is not ours, and parsing it would
# only cost the receiver time.
MAX_HEADER_LENGTH = 4096
_MAX_TIMESTAMP_DIGITS = 12


class SignatureError(ValueError):
    """The request is not a genuine delivery (or is outside the replay window)."""


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of `f"{timestamp}.{body}"` keyed with `secret`."""
    message = f"{int(timestamp)}.".encode("ascii") + _as_bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes | str) -> str:
    """`t=<timestamp>,v1=<sig>[,v1=<sig>...]`, one v1 per secret in the order given."""
    parts = [f"t={int(timestamp)}"]
    parts += [f"{SCHEME}={signature(s, timestamp, body)}" for s in secrets]
    if len(parts) == 1:
        raise ValueError("at least one secret is needed to sign")
    return ",".join(parts)


def headers(
    *, secrets: Iterable[str], body: bytes | str, delivery_id: str, event: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers a delivery carries. With no secret there is no signature header: only tier
    notifications to chat webhooks (which check none, and are never signed) are sent that way."""
    out = {DELIVERY_HEADER: delivery_id, EVENT_HEADER: event}
    secrets = list(secrets)
    if secrets:
        out[SIGNATURE_HEADER] = signature_header(secrets, int(time.time()) if timestamp is None else timestamp, body)
    return out


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from a signature header; SignatureError when malformed.
    Unknown schemes are ignored, so a later scheme can be added next to v1."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("Missing or oversized signature header.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("Malformed signature header.")
        if key == "t":
            # ASCII digits only: int() would also take "٣" or "+1_0".
            digits = 0 < len(value) <= _MAX_TIMESTAMP_DIGITS and value.isascii() and value.isdigit()
            if timestamp is not None or not digits:
                raise SignatureError("Malformed timestamp in the signature header.")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("No timestamp in the signature header.")
    if not signatures:
        raise SignatureError(f"No {SCHEME} signature in the signature header.")
    return timestamp, signatures


def verify(
    secrets: str | Iterable[str],
    header: str,
    body: bytes | str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a delivery: some v1 in `header` is the HMAC of the timestamp and `body` under one
    of `secrets`, and the timestamp is within `tolerance` seconds of `now` (either side: a
    receiver's clock may be ahead). Returns the signed timestamp; raises SignatureError.

    Pass the raw body as received: re-serialising parsed JSON changes the bytes."""
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    candidates = [s for s in candidates if s]
    if not candidates:
        raise SignatureError("No secret to verify with.")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("The signature's timestamp is outside the tolerance (a replay, or a clock far off).")
    raw = _as_bytes(body)
    matched = False
    # Every pair is compared in constant time, and all of them are, so the time taken says
    # nothing about which secret or which signature came close.
    for secret in candidates:
        expected = signature(secret, timestamp, raw).encode("ascii")
        for given in signatures:
            if hmac.compare_digest(expected, given.encode("utf-8", "replace")):
                matched = True
    if not matched:
        raise SignatureError("No signature matches the body with the given secret(s).")
    return timestamp
