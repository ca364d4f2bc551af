from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from demo.scenarios import DEMO_PASSWORD
from reviewapp.management.commands._serving import banner_write


def _banner() -> list[str]:
    lines: list[str] = []
    banner_write(lines.append, url="http://127.0.0.1:8000/")
    return lines


def test_the_banner_names_no_logins_before_the_demo_is_seeded(db):
    assert _banner()[0] == "Serving http://127.0.0.1:8000/"
    assert not any(DEMO_PASSWORD in line for line in _banner())


def test_the_demo_app_adds_its_logins_to_the_banner_through_the_core_hook(db, settings, monkeypatch):
    monkeypatch.delenv("REVIEWAPP_QUIET", raising=False)
    settings.DEBUG = True
    call_command("seed_demo", conversations=0, retail_conversations=0, no_logins=True, stdout=StringIO())

    lines = _banner()

    assert lines[2:] == [
        f"Demo logins for organization 'demo' (password for each: {DEMO_PASSWORD}):",
        "  annotator  annotator",
        "  approver   approver",
        "  lead       approver    (the finance ladder's four-eyes tier, with cfo)",
        "  cfo        approver    (the finance ladder's four-eyes tier, with lead)",
        "  engineer   engineer    (engineer in 'demo-retail' too)",
        "  admin      admin       (admin in 'demo-retail' too; staff for /admin/)",
        "Approvals: /escalations/ (agent actions waiting for a decision; the navigation bar counts them)",
        "  as approver: tier 1 of both ladders (mid-sized refunds, unsure agents, vouchers, refunds over $200)",
        "  as admin: tier 2 of the default ladder, and whatever an approver may decide",
        "  as lead or cfo: also tier 2 of the finance ladder, where both must approve (four-eyes);",
        "    one refund there has cfo's approval and waits for lead's",
    ]
