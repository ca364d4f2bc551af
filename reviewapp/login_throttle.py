"""Sign-in throttling, one mechanism for the token endpoint, `/login/` and `/admin/login/`.

Failed sign-ins are counted per client address and per username (normalized) in fixed windows
in the shared cache. Once either count reaches its limit, every sign-in for that address or
username is refused until the window ends, the right password included: otherwise a guesser
would learn the password from which attempt got through. Successful sign-ins are not counted;
one resets its username's count (not its address's).

The per-username limit lets anyone lock a person out for one window by failing on purpose; the
window is short and an admin can still act, which is the usual trade against unlimited guesses.
"""

from __future__ import annotations

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


def check(*, address: str, username: str) -> None:
    """Raise Throttled when this address or username is over its limit in the current window."""
    window, remaining = _window()
    address_key, user_key = _keys(address=address, username=username, window=window)
    try:
        counts = cache.get_many([address_key, user_key])
    except Exception:
        # The cache (Redis) is down: sign-in stays available, unthrottled, and says so in the log.
        logger.exception("login throttle: cache unavailable, not throttling")
        return
    if (
        counts.get(address_key, 0) >= settings.LOGIN_FAILURES_PER_ADDRESS
        or counts.get(user_key, 0) >= settings.LOGIN_FAILURES_PER_USERNAME
    ):
        raise Throttled(retry_after=remaining)


def failure_record(*, address: str, username: str) -> None:
    window, _ = _window()
    # Kept a little past the window so a slow clock never loses a count early; the window
    # number in the key is what ends it.
    timeout = settings.LOGIN_FAILURE_WINDOW_SECONDS * 2
    try:
        for key in _keys(address=address, username=username, window=window):
            cache.add(key, 0, timeout=timeout)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=timeout)
    except Exception:
        logger.exception("login throttle: cache unavailable, failure not counted")


def success_record(*, username: str) -> None:
    window, _ = _window()
    try:
        cache.delete(_keys(address="", username=username, window=window)[1])
    except Exception:
        logger.exception("login throttle: cache unavailable")


def authenticate_throttled(request: HttpRequest | None, *, username: str, password: str) -> AbstractBaseUser | None:
    """Django's `authenticate`, refused (Throttled) while the caller's address or the username is
    over its limit. Returns the user, or None for a wrong username or password (counted)."""
    address = client_address(request)
    check(address=address, username=username)
    user = authenticate(request, username=username, password=password)
    if user is None:
        failure_record(address=address, username=username)
        return None
    success_record(username=username)
    return user
