"""Raw token format and hashing. Keys carry 256 bits of randomness, so a plain SHA-256 is the
right hash (a slow password hash would add latency to every request and no safety)."""

from __future__ import annotations

import hashlib
import secrets

PROJECT_KEY_PREFIX = "rak_"
PERSONAL_TOKEN_PREFIX = "rat_"  # noqa: S105 - a label, not a secret
DISPLAY_PREFIX_LENGTH = 12


def token_generate(kind_prefix: str) -> str:
    return kind_prefix + secrets.token_urlsafe(32)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def token_display_prefix(raw: str) -> str:
    return raw[:DISPLAY_PREFIX_LENGTH]
