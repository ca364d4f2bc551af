"""The Python client's gate (clients/python) against the real app on a live server: `Client.gate`,
its async twin, and `python -m reviewapp_client gate` as a CI job runs it, with the exit code
the job fails on. The client is imported from its source tree, as its own tests do."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.models import DatasetRun
from reviewapp import services as core_services
from tests.evaluation.factories_runs import make_version

SDK_SRC = Path(__file__).resolve().parents[2] / "clients" / "python" / "src"
sys.path.insert(0, str(SDK_SRC))

from reviewapp_client import AsyncClient, BadRequest, Client  # noqa: E402

ITEMS = [{"key": f"k{i}", "critical": i < 2, "tags": ["billing"] if i % 2 else []} for i in range(20)]


@pytest.fixture
def setup(live_server, project):
    dataset, version = make_version(project, items=ITEMS)
    key = core_services.api_key_create(project=project, name="ci").raw
    return {"url": live_server.url, "key": key, "dataset": dataset, "version": version}


def test_client_gate_pass_and_fail(setup):
    all_pass = [{"item_id": i["key"], "passed": True, "output": {"text": "ok"}} for i in ITEMS]
    with Client(setup["url"], setup["key"]) as client:
        passed = client.gate(setup["dataset"].pk, 1, "v1", all_pass)
        failed = client.gate(setup["dataset"].pk, 1, "v2", [{**r, "passed": r["item_id"] != "k0"} for r in all_pass])
        with pytest.raises(BadRequest) as caught:
            client.gate(setup["dataset"].pk, 1, "v3", [{"item_id": "nope", "passed": True}])

    assert passed.passed is True
    assert (passed.pass_rate, passed.critical_pass_rate) == (1.0, 1.0)
    assert passed.version_hash == setup["version"].content_hash
    assert failed.passed is False
    assert failed.pass_rate == 0.95
    assert failed.reasons == ["Critical pass rate 50.00% (1 of 2) is below the target 100.00%."]
    assert caught.value.errors == {"results": ["Unknown item ids: nope."]}
    assert [r.agent_version for r in DatasetRun.objects.order_by("id")] == ["v1", "v2"]


def test_async_client_gate(setup):
    async def go():
        async with AsyncClient(setup["url"], setup["key"]) as client:
            return await client.gate(setup["dataset"].pk, 1, "v1", [{"item_id": "k5", "passed": True}])

    result = asyncio.run(go())
    assert result.passed is False
    assert len(result.missing) == 19


def test_the_command_line_exit_code_fails_the_ci_job(setup, tmp_path):
    results = tmp_path / "results.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": str(SDK_SRC),
        "REVIEWAPP_URL": setup["url"],
        "REVIEWAPP_API_KEY": setup["key"],
    }

    def gate(agent_version: str, failing: set[str]) -> subprocess.CompletedProcess[str]:
        results.write_text(
            "".join(json.dumps({"item_id": i["key"], "passed": i["key"] not in failing}) + "\n" for i in ITEMS)
        )
        argv = ["gate", "--dataset", str(setup["dataset"].pk), "--version", "1", "--agent-version", agent_version]
        return subprocess.run(
            [sys.executable, "-m", "reviewapp_client", *argv, "--results", str(results)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = gate("v1", set())
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("Gate: PASS")
    bad = gate("v2", {"k5", "k7"})
    assert bad.returncode == 1, bad.stderr
    assert "Pass rate: 90.00% (18 of 20)" in bad.stdout
    assert "  - Pass rate 90.00% (18 of 20) is below the target 95.00%." in bad.stdout
    argv = ["gate", "--dataset", "999999", "--version", "1", "--agent-version", "v3", "--results", str(results)]
    wrong = subprocess.run(
        [sys.executable, "-m", "reviewapp_client", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2
    assert "404" in wrong.stderr
