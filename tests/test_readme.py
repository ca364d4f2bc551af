"""The README's shell blocks work as written on a fresh clone after `make run`.

Every ```sh block runs, in order, in one bash process (as a reader pastes them into one
terminal) against `make run` on a free port. The README's origin, http://127.0.0.1:8000, is
rewritten to that port and nothing else is changed. A block is left out only when the line
before its fence is `<!-- readme-test: skip (...) -->`, which is for commands that start
long-lived processes (`make run`, `make dev`, `make test`, the production servers).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests._make_run import ROOT, fresh_env, make_run

# Builds its own environment (a fresh `make run` on SQLite, or settings in a subprocess without
# DATABASE_URL/REDIS_URL): the same on either CI pass, so .ci/run's SQLite pass leaves it out.
pytestmark = pytest.mark.backend_independent

README = ROOT / "README.md"
ORIGIN = "http://127.0.0.1:8000"
SKIP = re.compile(r"<!-- readme-test: skip \(.+\) -->")
LONG_LIVED = re.compile(r"\bmake (-\S+ )*(run|dev|test)\b|\bgunicorn \S|\bcelery -A \S+ (worker|beat)\b")


def _sh_blocks(text: str) -> list[tuple[int, bool, str]]:
    """(line number, skipped, body) of each ```sh block."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i + 1
            end = lines.index("```", start)
            previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
            blocks.append((start, bool(SKIP.fullmatch(previous.strip())), "\n".join(lines[start:end])))
            i = end
        i += 1
    return blocks


def test_only_blocks_that_start_long_lived_processes_are_skipped():
    blocks = _sh_blocks(README.read_text())
    assert blocks
    for line, skipped, body in blocks:
        assert skipped == bool(LONG_LIVED.search(body)), f"README.md line {line}"


def test_the_readme_shell_blocks_run_against_a_live_server(tmp_path):
    runnable = [(line, body) for line, skipped, body in _sh_blocks(README.read_text()) if not skipped]
    assert len(runnable) >= 2
    assert all(ORIGIN in body for _line, body in runnable)

    with make_run(tmp_path / "var") as running:
        origin = f"http://127.0.0.1:{running.port}"
        script = ["set -euo pipefail"]
        for line, body in runnable:
            script += [f"echo '>>> README.md line {line}'", body.replace(ORIGIN, origin)]
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=ROOT,
            env=fresh_env(tmp_path / "var"),
            capture_output=True,
            text=True,
            timeout=180,
        )

    shown = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, shown
    for line, _body in runnable:
        assert f">>> README.md line {line}" in done.stdout, shown
    # The agent's conversation was stored, the rubric and queue made, and the claimed item labeled.
    assert '"status":"created"' in done.stdout, shown
    assert re.search(r"^rubric \d+$", done.stdout, re.M), shown
    assert re.search(r"^queue \d+$", done.stdout, re.M), shown
    assert '"answers":{"quality":"bad"}' in done.stdout, shown
    # Ask before acting: approved by the policy, repeated, refused with a changed payload, and
    # the third $400 refund of the day escalated.
    assert '"status":"approved","decided_by":"policy"' in done.stdout, shown
    assert '"errors":{"args":' in done.stdout, shown
    assert '"matched_rule":"refund velocity"' in done.stdout, shown
    assert '"kind":"tier_entered"' in done.stdout, shown
