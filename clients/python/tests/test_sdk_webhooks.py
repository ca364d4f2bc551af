"""`verify_webhook`: Stripe-style signatures, several during a secret rotation, a replay window."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from reviewapp_client import InvalidSignature, sign_webhook, verify_webhook

SECRET = "whsec_current"
OLD = "whsec_old"
BODY = json.dumps({"delivery_id": "d-1", "action": {"id": 7, "status": "approved"}}).encode()
T = 1_767_000_000


def v1(secret: str, t: int, body: bytes) -> str:
    # Independent of the package: HMAC-SHA256(secret, f"{t}.{body}") in hex.
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_valid_signature_returns_the_parsed_body():
    header = f"t={T},v1={v1(SECRET, T, BODY)}"
    assert verify_webhook(SECRET, header, BODY, now=T) == {
        "delivery_id": "d-1",
        "action": {"id": 7, "status": "approved"},
    }
    assert verify_webhook([SECRET], header, BODY.decode(), now=T + 300)["delivery_id"] == "d-1"  # str body too


def test_sign_webhook_matches_the_contract():
    assert sign_webhook(SECRET, BODY, timestamp=T) == f"t={T},v1={v1(SECRET, T, BODY)}"


def test_rotation_several_v1_entries_and_several_secrets():
    both = f"t={T},v1={v1(SECRET, T, BODY)},v1={v1(OLD, T, BODY)}"
    assert verify_webhook(OLD, both, BODY, now=T)["delivery_id"] == "d-1"  # a receiver not yet updated
    assert verify_webhook(SECRET, both, BODY, now=T)["delivery_id"] == "d-1"
    only_old = f"t={T},v1={v1(OLD, T, BODY)}"
    assert verify_webhook([SECRET, OLD], only_old, BODY, now=T)["delivery_id"] == "d-1"
    with pytest.raises(InvalidSignature, match="matches"):
        verify_webhook(SECRET, only_old, BODY, now=T)


@pytest.mark.parametrize("offset", [301, -301, 100_000])
def test_outside_the_tolerance_is_refused(offset):
    header = f"t={T},v1={v1(SECRET, T, BODY)}"
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_webhook(SECRET, header, BODY, now=T + offset)
    assert verify_webhook(SECRET, header, BODY, now=T + offset, tolerance=abs(offset))["delivery_id"] == "d-1"


def test_a_changed_body_or_timestamp_is_refused():
    header = f"t={T},v1={v1(SECRET, T, BODY)}"
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, header, BODY.replace(b"approved", b"rejected"), now=T)
    moved = f"t={T + 1},v1={v1(SECRET, T, BODY)}"
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, moved, BODY, now=T)
    with pytest.raises(InvalidSignature):
        verify_webhook("whsec_other", header, BODY, now=T)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"v1={'a' * 64}",  # no timestamp
        f"t={T}",  # no signature
        f"t=abc,v1={'a' * 64}",
        f"t=+{T},v1={'a' * 64}",
        f"t=١٢٣,v1={'a' * 64}",  # digits of another script
        f"t={T},v1=é{'a' * 63}",  # not ASCII: must not crash compare_digest
        f"t={T},v1={'a' * 63}",
        f"t={T},v0={'a' * 64}",
        f"t={T},t={T},v1={'a' * 64}",  # two timestamps
        "t=" + "9" * 10_000,
    ],
)
def test_malformed_headers_are_refused(header):
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, header, BODY, now=T)


def test_a_second_timestamp_is_refused_even_with_a_good_signature():
    header = f"t={T},v1={v1(SECRET, T, BODY)},t={T + 5}"
    with pytest.raises(InvalidSignature, match="timestamp"):
        verify_webhook(SECRET, header, BODY, now=T)


def test_spaces_and_upper_case_hex_are_accepted():
    header = f"t={T}, v1={v1(SECRET, T, BODY).upper()}"
    assert verify_webhook(SECRET, header, BODY, now=T)["delivery_id"] == "d-1"


def test_no_secret_is_refused():
    with pytest.raises(InvalidSignature):
        verify_webhook([], f"t={T},v1={v1(SECRET, T, BODY)}", BODY, now=T)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_json_object_is_refused(body):
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, f"t={T},v1={v1(SECRET, T, body)}", body, now=T)


def test_invalid_signature_is_a_value_error():
    assert issubclass(InvalidSignature, ValueError)
