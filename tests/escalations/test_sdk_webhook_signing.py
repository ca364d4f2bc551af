"""The Python client's `verify_webhook` accepts what the server's signer sends (one secret, and
two during a rotation) and refuses it with the wrong secret or a changed body: the two
implementations are kept in step by this test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

signing = pytest.importorskip("escalations.signing", reason="the webhook signer is not in this checkout yet")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))

from reviewapp_client import InvalidSignature, verify_webhook  # noqa: E402

BODY = json.dumps({"type": "action.decided", "delivery_id": "d-1", "action": {"id": 7, "status": "approved"}})
T = 1_767_000_000


def test_the_client_verifies_the_servers_signature():
    header = signing.signature_header(["whsec_new"], T, BODY.encode())
    assert verify_webhook("whsec_new", header, BODY.encode(), now=T)["delivery_id"] == "d-1"


def test_the_client_verifies_during_a_rotation_with_either_secret():
    header = signing.signature_header(["whsec_new", "whsec_old"], T, BODY)
    assert verify_webhook(["whsec_old"], header, BODY, now=T + 299)["action"]["id"] == 7
    assert verify_webhook(["whsec_new"], header, BODY, now=T)["action"]["id"] == 7


def test_the_client_refuses_a_wrong_secret_or_a_changed_body():
    header = signing.signature_header(["whsec_new"], T, BODY)
    with pytest.raises(InvalidSignature):
        verify_webhook("whsec_other", header, BODY, now=T)
    with pytest.raises(InvalidSignature):
        verify_webhook("whsec_new", header, BODY.replace("approved", "rejected"), now=T)
    with pytest.raises(InvalidSignature):
        verify_webhook("whsec_new", header, BODY, now=T + 301)
