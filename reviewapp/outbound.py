"""Outbound HTTP for webhooks: where we may send, and one bounded POST. No ORM.

A callback URL is chosen by whoever holds an API key, so the server must not become their way
into its own network (SSRF). Unless private hosts are allowed (`WEBHOOK_ALLOW_PRIVATE_HOSTS`,
on by default only with DEBUG), a destination is refused when:

- the scheme is not http or https, there is no host, the URL carries credentials
  (`user:pass@`: the URL is shown to everyone who may read the action), or it is over 2,000
  characters (checked when the URL is stored, `url_problem`, and again before each send);
- the host is `localhost`/`*.localhost`, or an IP literal that is not a global unicast address;
- the host resolves to any address that is not global unicast: loopback (127/8, ::1), private
  (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the cloud metadata
  service, fe80::/10), shared (100.64/10), unspecified, multicast, reserved or documentation
  ranges; for IPv6 anything outside 2000::/3 or in its special ranges (2001::/23 with Teredo,
  2001:db8::/32, 3fff::/20, 5f00::/16); IPv6 forms embedding an IPv4 address are judged by it
  (mapped ::ffff:0:0/96, well-known NAT64 64:ff9b::/96, 6to4, ISATAP) or refused outright
  (IPv4-compatible ::/96, IPv4-translated ::ffff:0:0:0/96, local-use NAT64 64:ff9b:1::/48).

A refused resolution is reported as a generic "the host resolves to a non-public address"
(the attempt is shown to agents); the address itself is logged on the server only.

Every address a name resolves to is checked, not just the first, and the connection goes to an
address that was checked (`_GuardedBackend` resolves once and connects to the result), so DNS
rebinding between the check and the connect cannot reach an internal host. Redirects are never
followed (a 3xx is a failed attempt), environment proxies are ignored, and TLS still verifies
the certificate against the URL's host name.

A send is bounded in time and size: 10 s in total for connect, TLS, request and response (a
deadline over every socket operation: httpx's own timeouts are per operation, so a receiver
trickling a byte every few seconds could otherwise hold a worker for ever), and at most 4 KB
of the response body is read. Name resolution uses the system resolver, whose own timeout
applies before the deadline starts to bite.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
import typing
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

ALLOWED_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2000
TOTAL_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 4096
USER_AGENT = "reviewapp-webhooks/1"
# What a refused resolution records: the attempt is shown to whoever holds the API key, and
# naming the address would map the server's internal DNS for them. The detail goes to the log.
REFUSED_RESOLUTION = "refused: the host resolves to a non-public address"

logger = logging.getLogger(__name__)

# IPv6: only global unicast (2000::/3) is reachable by default. That one test refuses the
# IPv4-compatible (::a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d) forms, local-use NAT64
# (64:ff9b:1::/48, which a site maps to whatever it likes), ULA, link-local and multicast.
# Python's is_global does not know all of the special ranges inside 2000::/3 (3.11 counts the
# ones above as global), so they are listed here: IETF protocol assignments (Teredo among
# them), documentation, SRv6 SIDs.
_V6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_V6_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16"))
# The well-known NAT64 prefix is how a DNS64 resolver names a public IPv4 host on an IPv6-only
# network: judged by the IPv4 address it embeds (RFC 6052 forbids it for non-global ones).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# ISATAP interface identifiers (RFC 5214) embed the IPv4 address the site's router tunnels to.
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)
# IPv4 ranges that are not globally reachable and that Python 3.11's is_global still counts
# as global: IETF protocol assignments (3.11 knows only parts of it), the 6to4 relay anycast.
_V4_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "192.88.99.0/24"))


class DestinationRefused(Exception):
    """The URL or an address its host resolves to is not a permitted webhook destination."""


def _ipv4_allowed(ip: ipaddress.IPv4Address) -> bool:
    # is_global excludes private, loopback, link-local, shared, reserved and documentation
    # ranges; multicast can still count as global, and a webhook is never multicast.
    return (
        ip.is_global
        and not ip.is_multicast
        and not ip.is_unspecified
        and not any(ip in network for network in _V4_NOT_GLOBAL)
    )


def _ipv6_allowed(ip: ipaddress.IPv6Address) -> bool:
    if ip not in _V6_GLOBAL_UNICAST or any(ip in network for network in _V6_NOT_GLOBAL):
        return False
    if ip.sixtofour is not None and not _ipv4_allowed(ip.sixtofour):  # 2002:a.b.c.d::/48
        return False
    interface_id = int(ip) & 0xFFFF_FFFF_FFFF_FFFF
    if interface_id >> 32 in _ISATAP_IDS and not _ipv4_allowed(ipaddress.IPv4Address(interface_id & 0xFFFF_FFFF)):
        return False
    return ip.is_global


def address_allowed(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a global unicast address, the only kind a webhook may reach by default. IPv6
    forms that embed an IPv4 address are judged by it (mapped, well-known NAT64, 6to4, ISATAP)
    or refused outright (IPv4-compatible, IPv4-translated, local-use NAT64, Teredo)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_allowed(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d: the socket connects to the IPv4 address
        return _ipv4_allowed(ip.ipv4_mapped)
    if ip in _NAT64:
        return _ipv4_allowed(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return _ipv6_allowed(ip)


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why `url` may not be a webhook destination, judged without DNS (cheap enough for the
    request path); None when it may. The addresses its host resolves to are checked at send
    time (`post`)."""
    if not isinstance(url, str) or not url:
        return "Enter a URL."
    if len(url) > MAX_URL_LENGTH:
        return f"Use at most {MAX_URL_LENGTH} characters."
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "A URL has no spaces or control characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return "Only http and https URLs are accepted."
    host = parts.hostname
    if not host:
        return "The URL has no host."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "A URL with credentials (user:password@) is refused: it would be shown to everyone who reads the action."
    if port == 0:
        return "Not a valid port."
    if allow_private:
        return None
    if host == "localhost" or host.endswith((".localhost", ".localhost.")) or host == "localhost.":
        return "A webhook may not go to this server's own host."
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address_allowed(literal):
        return "A webhook may not go to a loopback, private, link-local or reserved address."
    return None


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    # Keep the resolver's order (it prefers what is reachable), without repeats.
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by one deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self._inner = inner
        self._deadline = deadline

    def _budget(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the webhook's total time limit was reached")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: typing.Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._budget(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves the host once, refuses it if any address is not allowed, and connects to the
    addresses it checked (never resolving again), under the send's deadline."""

    def __init__(self, *, allow_private: bool, deadline: float):
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        if not self._allow_private:
            refused = [a for a in addresses if not address_allowed(a)]
            if refused:
                raise DestinationRefused(
                    f"{host} resolves to {refused[0]}, a loopback, private, link-local or reserved address"
                )
        last_error: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("the webhook's total time limit was reached")
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=left if timeout is None else min(timeout, left),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise last_error

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, *, backend: _GuardedBackend):
        super().__init__(trust_env=False, retries=0)
        # httpx does not take a network backend itself; its pool is replaced by one built the
        # same way around ours (one connection: a send is one request).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=1,
            max_keepalive_connections=0,
            network_backend=backend,
            retries=0,
        )


@dataclass(frozen=True)
class PostResult:
    status_code: int | None  # None: no response (refused, timed out, connection error)
    error: str  # "" on a 2xx
    excerpt: str  # the first bytes of the response body, decoded leniently
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _error_text(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {TOTAL_TIMEOUT_SECONDS:g} s"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    allow_private: bool,
    total_timeout: float = TOTAL_TIMEOUT_SECONDS,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> PostResult:
    """POST `body` to `url` once, bounded as the module docstring says. Never raises for
    anything the receiver or the network does: the outcome is in the result."""
    started = time.monotonic()

    def done(status_code: int | None, error: str, excerpt: str = "") -> PostResult:
        return PostResult(status_code, error[:500], excerpt[:500], int((time.monotonic() - started) * 1000))

    problem = url_problem(url, allow_private=allow_private)
    if problem:
        return done(None, f"refused: {problem}")
    backend = _GuardedBackend(allow_private=allow_private, deadline=started + total_timeout)
    request_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        with (
            httpx.Client(
                transport=_GuardedTransport(backend=backend),
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(total_timeout),
            ) as client,
            client.stream("POST", url, content=body, headers=request_headers) as response,
        ):
            received = bytearray()
            for chunk in response.iter_raw():
                received += chunk
                if len(received) >= max_response_bytes:
                    break  # the rest is never read: closing drops the connection
            excerpt = bytes(received[:max_response_bytes]).decode("utf-8", "replace")
            status_code = response.status_code
            if 200 <= status_code < 300:
                return done(status_code, "", excerpt)
            if response.is_redirect:
                location = response.headers.get("location", "")[:200]
                return done(status_code, f"redirect to {location!r} not followed", excerpt)
            return done(status_code, f"HTTP {status_code}", excerpt)
    except DestinationRefused as exc:
        logger.warning("webhook to %s refused: %s", urlsplit(url).hostname, exc)
        return done(None, REFUSED_RESOLUTION)
    except httpx.HTTPError as exc:
        return done(None, _error_text(exc))
    except OSError as exc:  # anything the socket layer raises that httpcore did not map
        return done(None, _error_text(exc))
