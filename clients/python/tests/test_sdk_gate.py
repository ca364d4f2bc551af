"""`Client.gate`, its async twin and `python -m reviewapp_client gate` against a fake server."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import pytest

from reviewapp_client import AsyncClient, BadRequest, Client, GateResult
from reviewapp_client import __main__ as cli
from reviewapp_client import client as client_module
from reviewapp_client.gate import read_jsonl

ANSWER = {
    "id": 7,
    "dataset": 3,
    "version": 2,
    "version_hash": "ab" * 32,
    "agent_version": "v2",
    "gate": "fail",
    "reasons": ["Pass rate 50.00% (1 of 2) is below the target 95.00%."],
    "warnings": ["No critical items: the critical pass rate was not checked."],
    "item_count": 2,
    "passed_count": 1,
    "critical_count": 0,
    "critical_passed_count": 0,
    "pass_rate": 0.5,
    "critical_pass_rate": None,
    "wilson_lower": 0.0945,
    "critical_lower": None,
    "needed_items": {"n": None, "assumption": "unreachable", "target": 0.95, "enough": False},
    "critical_needed_items": 72,
    "segments": [{"kind": "tag", "name": "billing", "n": 2, "passed": 1, "pass_rate": 0.5, "low": 0.09, "high": 0.9}],
    "missing": [],
}


class Fake:
    def __init__(self, answer: dict | None = None, status: int = 201):
        self.answer = answer or ANSWER
        self.status = status
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.answer)


RESULTS = [{"item_id": "a", "passed": True, "score": 0.9, "output": {"text": "hi"}}, {"item_id": "b", "passed": False}]


def test_gate_posts_the_results_and_reads_the_verdict():
    fake = Fake()
    with Client("https://review.test", "key", transport=httpx.MockTransport(fake.handle)) as client:
        result = client.gate(3, 2, "v2", RESULTS)

    request = fake.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/v1/datasets/3/versions/2/runs"
    assert json.loads(request.content) == {"agent_version": "v2", "results": RESULTS}
    assert isinstance(result, GateResult)
    assert result.passed is False
    assert result.reasons == ANSWER["reasons"]
    assert result.pass_rate == 0.5
    assert result.critical_pass_rate is None
    assert result.needed_items is not None and result.needed_items.assumption == "unreachable"
    assert result.segments[0].name == "billing"
    assert result.raw == ANSWER


def test_a_refused_run_raises_with_the_fields():
    fake = Fake({"message": "1 result(s) name items that are not in version 2.", "errors": {"results": ["x"]}}, 400)
    client = Client("https://review.test", "key", transport=httpx.MockTransport(fake.handle))
    with client, pytest.raises(BadRequest) as caught:
        client.gate(3, 2, "v2", RESULTS)
    assert caught.value.errors == {"results": ["x"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, "v", []), "dataset_id"),
        ((1, True, "v", []), "version"),
        ((1, 1, "", []), "agent_version"),
        ((1, 1, "v", [{"item_id": "a"}]), "results[0]"),
        ((1, 1, "v", ["a"]), "results[0]"),
    ],
)
def test_bad_arguments_are_refused_before_sending(args, message):
    fake = Fake()
    client = Client("https://review.test", "key", transport=httpx.MockTransport(fake.handle))
    with client, pytest.raises(ValueError, match=message.replace("[", r"\[")):
        client.gate(*args)
    assert fake.requests == []


def test_the_async_twin():
    fake = Fake({**ANSWER, "gate": "pass", "reasons": []})

    async def go() -> GateResult:
        async with AsyncClient("https://review.test", "key", transport=httpx.MockTransport(fake.handle)) as client:
            return await client.gate(3, 2, "v2", iter(RESULTS))

    result = asyncio.run(go())
    assert result.passed is True
    assert json.loads(fake.requests[0].content)["results"] == RESULTS


def test_read_jsonl():
    rows = read_jsonl(io.StringIO('{"item_id": "a", "passed": true}\n\n{"item_id": "b", "passed": false}\n'))
    assert rows == [{"item_id": "a", "passed": True}, {"item_id": "b", "passed": False}]
    with pytest.raises(ValueError, match="line 2: not JSON"):
        read_jsonl(io.StringIO('{"item_id": "a", "passed": true}\n{oops\n'))
    with pytest.raises(ValueError, match="line 1: expected an object"):
        read_jsonl(io.StringIO("[1]\n"))


@pytest.fixture
def cli_server(monkeypatch):
    """The command line's Client talks to a fake server."""
    fake = Fake()
    real = client_module.Client

    class Faked(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, transport=httpx.MockTransport(fake.handle), **kwargs)

    monkeypatch.setattr(client_module, "Client", Faked)
    return fake


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_exit_codes_and_output(cli_server, tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    results.write_text("\n".join(json.dumps(r) for r in RESULTS) + "\n")
    argv = ["gate", "--dataset", "3", "--version", "2", "--agent-version", "v2", "--results", str(results)]
    monkeypatch.setenv("REVIEWAPP_URL", "https://review.test")
    monkeypatch.setenv("REVIEWAPP_API_KEY", "key")

    code, out, err = run_cli(argv)
    assert code == 1, err
    assert out.splitlines()[0] == "Gate: FAIL  (run 7: v2 on dataset 3 version 2)"
    assert "Pass rate: 50.00% (1 of 2); lower bound 9.45%" in out
    assert "  - Pass rate 50.00% (1 of 2) is below the target 95.00%." in out
    assert cli_server.requests[0].headers["authorization"] == "Bearer key"

    cli_server.answer = {**ANSWER, "gate": "pass", "reasons": []}
    code, out, _ = run_cli([*argv, "--json"])
    assert code == 0
    assert json.loads(out)["gate"] == "pass"

    cli_server.answer, cli_server.status = {"message": "Dataset not found.", "errors": {}}, 404
    code, _, err = run_cli(argv)
    assert code == 2
    assert "404 Dataset not found." in err


def test_cli_usage_errors(cli_server, tmp_path, monkeypatch):
    monkeypatch.delenv("REVIEWAPP_URL", raising=False)
    monkeypatch.delenv("REVIEWAPP_API_KEY", raising=False)
    base = ["gate", "--dataset", "3", "--version", "2", "--agent-version", "v2"]

    code, _, err = run_cli([*base, "--results", "-"])
    assert code == 2
    assert "--base-url and --api-key" in err
    creds = ["--base-url", "https://review.test", "--api-key", "key"]
    code, _, err = run_cli([*base, *creds, "--results", str(tmp_path / "absent.jsonl")])
    assert code == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"item_id": "a", "passed": "yes"}\n')
    code, _, err = run_cli([*base, *creds, "--results", str(bad)])
    assert code == 2
    assert "results[0]" in err
    with pytest.raises(SystemExit) as caught:
        run_cli(["gate", "--dataset", "x"])
    assert caught.value.code == 2
    assert cli_server.requests == []
