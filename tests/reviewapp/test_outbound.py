"""Where a webhook may go and how one POST is bounded (reviewapp/outbound.py), against a
local receiver. No database."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from reviewapp import outbound
from tests.escalations.receiver import receiver


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared (carrier-grade NAT)
        "0.0.0.0",  # noqa: S104 - an address under test, not a binding
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2002:a00:1::",  # 6to4 around 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 around 127.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo with client 127.0.0.1
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo with client 8.8.8.8: refused outright
        "::127.0.0.1",  # IPv4-compatible (deprecated): outside 2000::/3
        "::8.8.8.8",  # IPv4-compatible, even of a public address
        "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
        "::ffff:0:808:808",  # IPv4-translated, even of a public address
        "64:ff9b:1::a00:1",  # local-use NAT64 around 10.0.0.1
        "64:ff9b:1::808:808",  # local-use NAT64: the site maps it as it likes
        "64:ff9b::a9fe:a9fe",  # well-known NAT64 around the metadata service
        "2002:c0a8:101::1",  # 6to4 around 192.168.1.1
        "2606:4700::5efe:a00:1",  # ISATAP interface id around 10.0.0.1
        "2606:4700::200:5efe:7f00:1",  # ISATAP (universal bit) around 127.0.0.1
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation (RFC 9637)
        "5f00::1",  # SRv6 SIDs
        "2001:10::1",  # ORCHID, IETF protocol assignments
        "100::1",  # discard-only
        "fec0::1",  # site-local (deprecated)
        "4000::1",  # unassigned, outside 2000::/3
        "192.0.0.8",  # IETF protocol assignments
        "192.88.99.1",  # 6to4 relay anycast
        "198.18.0.1",  # benchmarking
        "240.0.0.1",  # reserved
    ],
)
def test_internal_addresses_are_not_allowed(address):
    assert outbound.address_allowed(address) is False


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",  # IPv4-mapped: judged by 8.8.8.8
        "64:ff9b::808:808",  # well-known NAT64 (DNS64 on an IPv6-only network) of 8.8.8.8
        "2002:808:808::1",  # 6to4 around 8.8.8.8
        "2606:4700::5efe:808:808",  # an ISATAP interface id around a public address
    ],
)
def test_global_unicast_addresses_are_allowed(address):
    assert outbound.address_allowed(address) is True


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/x", "Only http and https"),
        ("javascript:alert(1)", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("gopher://example.com:70/", "Only http and https"),
        ("https://", "no host"),
        ("https://user:pass@example.com/hook", "credentials"),
        ("https://token@example.com/hook", "credentials"),
        ("https://example.com/" + "a" * 2000, "at most 2000"),
        ("https://exa mple.com/", "no spaces"),
        ("https://example.com/\r\nX: y", "no spaces"),
        ("https://example.com:99999/", "Not a valid URL"),
        ("http://localhost:8000/hook", "own host"),
        ("http://api.localhost/hook", "own host"),
        ("http://127.0.0.1/hook", "loopback"),
        ("http://[::1]:8000/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "loopback"),
        ("http://10.1.2.3/", "loopback"),
        ("http://[::127.0.0.1]/", "loopback"),
        ("http://[::ffff:0:7f00:1]/", "loopback"),
        ("http://[64:ff9b:1::a00:1]/", "loopback"),
        ("", "Enter a URL"),
    ],
)
def test_refused_urls(url, fragment):
    problem = outbound.url_problem(url, allow_private=False)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    "url", ["https://agent.example.com/hooks?x=1", "http://example.com:8080/a#frag", "https://93.184.216.34/x"]
)
def test_accepted_urls(url):
    assert outbound.url_problem(url, allow_private=False) is None


def test_private_hosts_are_accepted_when_allowed_but_never_other_schemes_or_credentials():
    assert outbound.url_problem("http://127.0.0.1:9000/hook", allow_private=True) is None
    assert outbound.url_problem("http://localhost/hook", allow_private=True) is None
    assert "Only http" in outbound.url_problem("file:///etc/passwd", allow_private=True)
    assert "credentials" in outbound.url_problem("http://a:b@127.0.0.1/", allow_private=True)


def test_a_loopback_receiver_is_refused_without_a_connection():
    with receiver([200]) as r:
        result = outbound.post(r.url, body=b"{}", headers={}, allow_private=False)
        assert result.status_code is None
        assert result.error.startswith("refused:")
        assert r.requests == []


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _fake_dns(monkeypatch, table):
    calls = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        if host in table:
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in table[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)
    return calls


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch, caplog):
    _fake_dns(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
    with receiver([200]) as r:
        result = outbound.post(f"http://hooks.example.com:{r.port}/x", body=b"{}", headers={}, allow_private=False)
        assert r.requests == []
    # The recorded error (shown to the agent) is generic: the internal address is in the
    # server's log only, so a callback URL cannot be used to map the internal DNS.
    assert result.error == "refused: the host resolves to a non-public address"
    assert "127.0.0.1" in caplog.text and "hooks.example.com" in caplog.text


def test_every_address_of_a_name_is_checked_not_only_the_first(monkeypatch, caplog):
    _fake_dns(monkeypatch, {"mixed.example.com": ["93.184.216.34", "10.0.0.7"]})
    result = outbound.post("http://mixed.example.com/x", body=b"{}", headers={}, allow_private=False)
    assert result.status_code is None
    assert result.error == outbound.REFUSED_RESOLUTION and "10.0." not in result.error
    assert "10.0.0.7" in caplog.text


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    """Resolved once, and the connection is made to that address (not resolved again), with
    the URL's host name kept in the Host header: DNS rebinding after the check has no second
    lookup to answer."""
    calls = _fake_dns(monkeypatch, {"receiver.test": ["127.0.0.1"]})
    with receiver([200]) as r:
        result = outbound.post(f"http://receiver.test:{r.port}/in", body=b"{}", headers={}, allow_private=True)
        assert result.status_code == 200, result.error
        # One lookup of the name; the connection then passes the checked address itself
        # (socket.create_connection "resolves" a literal without asking DNS).
        assert [c for c in calls if not _is_ip(c)] == ["receiver.test"]
        assert "127.0.0.1" in calls
        assert r.requests[0].headers["host"] == f"receiver.test:{r.port}"


def test_a_post_carries_the_body_and_headers_and_reads_the_answer():
    with receiver([201]) as r:
        result = outbound.post(r.url, body=b'{"a":1}', headers={"X-Reviewapp-Delivery": "d1"}, allow_private=True)
        assert (result.status_code, result.error, result.ok) == (201, "", True)
        assert result.excerpt == '{"ok": true}'
        sent = r.requests[0]
        assert sent.body == b'{"a":1}'
        assert sent.headers["content-type"] == "application/json"
        assert sent.headers["x-reviewapp-delivery"] == "d1"


def test_a_redirect_is_not_followed():
    with receiver([("redirect", "/elsewhere"), 200]) as r:
        result = outbound.post(r.url, body=b"{}", headers={}, allow_private=True)
        assert result.status_code == 302 and not result.ok
        assert "redirect" in result.error and "/elsewhere" in result.error
        assert [q.path for q in r.requests] == ["/hooks/decisions"]


def test_a_hanging_receiver_is_given_up_on_at_the_deadline():
    with receiver([("hang",)]) as r:
        started = time.monotonic()
        result = outbound.post(r.url, body=b"{}", headers={}, allow_private=True, total_timeout=1.0)
        elapsed = time.monotonic() - started
        assert result.status_code is None and "timed out" in result.error
        assert 0.9 <= elapsed < 2.5, elapsed
        assert len(r.requests) == 1


def test_a_trickling_receiver_is_given_up_on_at_the_total_deadline():
    """A byte every 0.2 s never trips a per-operation timeout; the total deadline ends it."""
    with receiver([("trickle",)]) as r:
        started = time.monotonic()
        result = outbound.post(r.url, body=b"{}", headers={}, allow_private=True, total_timeout=1.0)
        elapsed = time.monotonic() - started
        assert result.status_code is None and "timed out" in result.error
        assert elapsed < 2.5, elapsed


def test_only_the_start_of_a_large_answer_is_read():
    with receiver([("big", 500, 5_000_000)]) as r:
        started = time.monotonic()
        result = outbound.post(r.url, body=b"{}", headers={}, allow_private=True)
        assert result.status_code == 500 and result.error == "HTTP 500"
        assert result.excerpt == "x" * 500
        assert time.monotonic() - started < 5
        assert len(r.requests) == 1


def test_a_closed_port_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = outbound.post(f"http://127.0.0.1:{port}/x", body=b"{}", headers={}, allow_private=True)
    assert result.status_code is None and "ConnectError" in result.error
