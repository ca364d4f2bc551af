"""The README's receiver example verifies what the app signs, and refuses what it should."""

from __future__ import annotations

import re
import time

from escalations import signing
from tests._make_run import ROOT


def _example():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?def verify_reviewapp_webhook.*?)```", text, re.S)
    assert block, "the README's webhook example is gone"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify_reviewapp_webhook"]


def test_the_readme_example_agrees_with_the_signer():
    verify = _example()
    body = b'{"type":"action.decided","action":{"id":1}}'
    now = int(time.time())
    header = signing.signature_header(["whsec_new", "whsec_old"], now, body)
    assert verify(["whsec_new"], header, body) is True
    assert verify(["whsec_old"], header, body) is True
    assert verify(["whsec_other"], header, body) is False
    assert verify(["whsec_new"], header, body + b" ") is False
    assert verify(["whsec_new"], signing.signature_header(["whsec_new"], now - 301, body), body) is False
    assert verify(["whsec_new"], header.replace(f"t={now}", f"t={now + 1}"), body) is False
    assert verify(["whsec_new"], f"t={now}", body) is False
    assert verify(["whsec_new"], "t=١٧٣٣٧٤٠٠٠٠,v1=00", body) is False
