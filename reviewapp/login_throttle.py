"""Sign-in throttling, one mechanism for the token endpoint, `/login/` and `/admin/login/`.

Sign-in attempts are counted per client address and per username (normalized) in fixed windows
in the shared cache, before the password is checked; a successful one is uncounted afterwards,
so the counts are failures plus attempts in flight. Once either count reaches its limit, every
sign-in for that address or username is refused until the window ends, the right password
included: otherwise a guesser would learn the password from which attempt got through. A
success also resets its username's count (not its address's).

The per-username limit lets anyone lock a person out for one window by failing on purpose; the
window is short and an admin can still act, which is the usual trade against unlimited guesses.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
import unicodedata
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)

# Seconds since the epoch. Tests replace it to move time without sleeping.
clock: Callable[[], float] = time.time


class Throttled(Exception):
    def __init__(self, *, retry_after: int):
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        self.message = f"Too many login attempts; try again in {minutes} minute{'' if minutes == 1 else 's'}."
        super().__init__(self.message)


def client_address(request: HttpRequest | None) -> str:
    """The caller's address as DRF's throttles see it: REMOTE_ADDR unless NUM_PROXIES proxies
    are trusted, then the address the outermost trusted proxy saw (X-Forwarded-For, counted
    from the right, so a client cannot choose it by sending its own header)."""
    if request is None:  # an AuthenticationForm built without a request
        return "unknown"
    num_proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies > 0 and forwarded:
        hops = [part.strip() for part in forwarded.split(",") if part.strip()]
        if hops:
            return hops[-min(num_proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def username_key(username: str) -> str:
    """Case, spacing and Unicode compatibility variants of a name (fullwidth letters) share one
    counter, so they are not separate quotas."""
    normalized = unicodedata.normalize("NFKC", username).strip().casefold()
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:32]


def _window() -> tuple[int, int]:
    """(window number, seconds until it ends)."""
    length = settings.LOGIN_FAILURE_WINDOW_SECONDS
    now = clock()
    number = int(now // length)
    return number, max(1, math.ceil((number + 1) * length - now))


def _keys(*, address: str, username: str, window: int) -> tuple[str, str]:
    # Hashed: a misconfigured proxy count could let a client's own header text into the key.
    address_digest = hashlib.sha256(address.encode("utf-8")).hexdigest()[:32]
    return (f"login-fail:addr:{address_digest}:{window}", f"login-fail:user:{username_key(username)}:{window}")


def _count(key: str, delta: int, *, timeout: int) -> int:
    """Add delta to a counter atomically and return its new value (incr is atomic in Redis and
    under LocMemCache's lock; add only creates a missing key)."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key, delta)
    except ValueError:  # expired between add and incr: only possible two windows on
        cache.add(key, max(delta, 0), timeout=timeout)
        return max(delta, 0)


def _uncount(key: str) -> None:
    # ValueError: the window's key expired meanwhile, nothing left to undo.
    with contextlib.suppress(ValueError):
        cache.decr(key)


def attempt_begin(*, address: str, username: str) -> tuple[str, str] | None:
    """Count this sign-in attempt against the address and the username BEFORE the password is
    checked, and raise Throttled when either count passes its limit (the attempt is uncounted
    again: a refused attempt guessed nothing). Returns the two counter keys, which the caller
    hands to `attempt_succeeded` when the password was right, or None when the cache is down.

    Counting first is what bounds parallel guesses: with check-then-count, N requests in
    flight all read the same count under the limit and all reached `authenticate`. Each
    increment returns a distinct value, so at most `limit` attempts per window pass, however
    many arrive at once."""
    window, remaining = _window()
    keys = _keys(address=address, username=username, window=window)
    # Kept a little past the window so a slow clock never loses a count early; the window
    # number in the key is what ends it.
    timeout = settings.LOGIN_FAILURE_WINDOW_SECONDS * 2
    try:
        address_count = _count(keys[0], 1, timeout=timeout)
        user_count = _count(keys[1], 1, timeout=timeout)
        over = address_count > settings.LOGIN_FAILURES_PER_ADDRESS or user_count > settings.LOGIN_FAILURES_PER_USERNAME
        if over:
            for key in keys:
                _uncount(key)
    except Exception:
        # The cache (Redis) is down: sign-in stays available, unthrottled, and says so in the log.
        logger.exception("login throttle: cache unavailable, not throttling")
        return None
    if over:
        raise Throttled(retry_after=remaining)
    return keys


def attempt_succeeded(keys: tuple[str, str] | None) -> None:
    """The password was right: a success is not a failure, so the address's count is undone,
    and the username's count is reset (its owner just proved who they are)."""
    if keys is None:
        return
    address_key, user_key = keys
    try:
        _uncount(address_key)
        cache.delete(user_key)
    except Exception:
        logger.exception("login throttle: cache unavailable")


def authenticate_throttled(request: HttpRequest | None, *, username: str, password: str) -> AbstractBaseUser | None:
    """Django's `authenticate`, refused (Throttled) while the caller's address or the username is
    over its limit. Returns the user, or None for a wrong username or password (which stays
    counted)."""
    keys = attempt_begin(address=client_address(request), username=username)
    user = authenticate(request, username=username, password=password)
    if user is not None:
        attempt_succeeded(keys)
    return user
