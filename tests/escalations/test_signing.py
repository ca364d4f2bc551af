"""Webhook signatures (escalations/signing.py): pure, no database."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from escalations import signing
from escalations.signing import SignatureError

BODY = b'{"type":"action.decided","action":{"id":7,"status":"approved"}}'
NEW = "whsec_new-secret"
OLD = "whsec_old-secret"
T = 1_733_740_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(NEW.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signing.signature(NEW, T, BODY) == expected
    assert signing.signature_header([NEW], T, BODY) == f"t={T},v1={expected}"


def test_a_genuine_delivery_verifies_with_bytes_or_text():
    header = signing.signature_header([NEW], T, BODY)
    assert signing.verify(NEW, header, BODY, now=T + 1) == T
    assert signing.verify([NEW], header, BODY.decode(), now=T) == T


def test_a_tampered_body_is_refused():
    header = signing.signature_header([NEW], T, BODY)
    tampered = BODY.replace(b"approved", b"rejected")
    with pytest.raises(SignatureError, match="No signature matches"):
        signing.verify(NEW, header, tampered, now=T)


def test_a_changed_timestamp_is_refused():
    """The timestamp is signed: moving it forward to pass the window breaks the signature."""
    header = signing.signature_header([NEW], T, BODY).replace(f"t={T}", f"t={T + 600}")
    with pytest.raises(SignatureError, match="No signature matches"):
        signing.verify(NEW, header, BODY, now=T + 600)


def test_another_secret_is_refused():
    header = signing.signature_header([NEW], T, BODY)
    with pytest.raises(SignatureError, match="No signature matches"):
        signing.verify("whsec_someone-else", header, BODY, now=T)


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_replay_outside_the_window_is_refused(offset):
    header = signing.signature_header([NEW], T, BODY)
    with pytest.raises(SignatureError, match="outside the tolerance"):
        signing.verify(NEW, header, BODY, now=T + offset)


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_inside_the_window_is_accepted(offset):
    header = signing.signature_header([NEW], T, BODY)
    assert signing.verify(NEW, header, BODY, now=T + offset) == T


def test_the_tolerance_can_be_narrowed():
    header = signing.signature_header([NEW], T, BODY)
    with pytest.raises(SignatureError):
        signing.verify(NEW, header, BODY, now=T + 61, tolerance=60)


def test_during_the_grace_both_secrets_sign_and_either_verifies():
    header = signing.signature_header([NEW, OLD], T, BODY)
    assert header.count("v1=") == 2
    # A receiver still on the old secret, one that switched, one holding both.
    assert signing.verify(OLD, header, BODY, now=T) == T
    assert signing.verify(NEW, header, BODY, now=T) == T
    assert signing.verify([NEW, OLD], header, BODY, now=T) == T
    with pytest.raises(SignatureError):
        signing.verify("whsec_neither", header, BODY, now=T)


def test_a_receiver_holding_both_secrets_accepts_either_single_signature():
    assert signing.verify([NEW, OLD], signing.signature_header([OLD], T, BODY), BODY, now=T) == T
    assert signing.verify([NEW, OLD], signing.signature_header([NEW], T, BODY), BODY, now=T) == T


def test_every_pair_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    header = signing.signature_header([NEW, OLD], T, BODY)
    signing.verify([NEW, OLD], header, BODY, now=T)
    # 2 secrets x 2 signatures, no early exit after the first match.
    assert len(calls) == 4


def test_unknown_schemes_are_ignored():
    header = signing.signature_header([NEW], T, BODY) + ",v0=deadbeef"
    assert signing.verify(NEW, header, BODY, now=T) == T


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "Missing"),
        ("v1=abc", "No timestamp"),
        (f"t={T}", "No v1"),
        (f"t={T},t={T},v1=ab", "Malformed timestamp"),
        ("t=-5,v1=ab", "Malformed timestamp"),
        ("t=١٧٣٣٧٤٠٠٠٠,v1=ab", "Malformed timestamp"),  # Arabic-Indic digits: int() takes them
        ("t=1e9,v1=ab", "Malformed timestamp"),
        ("t=" + "9" * 40 + ",v1=ab", "Malformed timestamp"),
        (f"t={T},garbage", "Malformed signature header"),
        ("t=1," + "v1=ab," * 1000, "oversized"),
    ],
)
def test_malformed_headers_are_refused(header, message):
    with pytest.raises(SignatureError, match=message):
        signing.verify(NEW, header, BODY, now=T)


def test_no_secret_verifies_nothing():
    header = signing.signature_header([NEW], T, BODY)
    with pytest.raises(SignatureError, match="No secret"):
        signing.verify([], header, BODY, now=T)
    with pytest.raises(SignatureError, match="No secret"):
        signing.verify("", header, BODY, now=T)


def test_headers_carry_delivery_and_event_and_sign_only_with_a_secret():
    with_secret = signing.headers(secrets=[NEW], body=BODY, delivery_id="abc", event="action.decided", timestamp=T)
    assert with_secret == {
        "X-Reviewapp-Delivery": "abc",
        "X-Reviewapp-Event": "action.decided",
        "X-Reviewapp-Signature": signing.signature_header([NEW], T, BODY),
    }
    unsigned = signing.headers(secrets=[], body=BODY, delivery_id="abc", event="action.tier_entered", timestamp=T)
    assert "X-Reviewapp-Signature" not in unsigned
