"""Raw token format and hashing. Keys carry 256 bits of randomness, so a plain SHA-256 is the
right hash (a slow password hash would add latency to every request and no safety)."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

PROJECT_KEY_PREFIX = "rak_"
PERSONAL_TOKEN_PREFIX = "rat_"  # noqa: S105 - a label, not a secret
DISPLAY_PREFIX_LENGTH = 12


def token_generate(kind_prefix: str) -> str:
    return kind_prefix + secrets.token_urlsafe(32)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def token_display_prefix(raw: str) -> str:
    return raw[:DISPLAY_PREFIX_LENGTH]


# Binds a personal token to the password its owner had when it was issued. Any change of the
# password hash (the password change page, the admin, `changepassword`, a raw set_password and
# save) makes the token stop working, the way Django ends sessions on a password change. It is
# keyed with SECRET_KEY so the stored value says nothing about the password hash.
_FINGERPRINT_SALT = "reviewapp.tokens.password_fingerprint"


def password_fingerprint(password_hash: str, secret: str | None = None) -> str:
    return salted_hmac(_FINGERPRINT_SALT, password_hash, secret=secret, algorithm="sha256").hexdigest()


def password_fingerprint_matches(fingerprint: str, password_hash: str) -> bool:
    """True when the token was issued under this password hash (under SECRET_KEY or one of
    SECRET_KEY_FALLBACKS, so rotating the key ends no token)."""
    if not fingerprint:
        return False
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        if constant_time_compare(fingerprint, password_fingerprint(password_hash, secret)):
            return True
    return False
