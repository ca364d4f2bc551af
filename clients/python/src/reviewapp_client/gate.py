"""The release gate: an agent version's per-item results on a golden dataset version, judged by
the server against the dataset's thresholds. `Client.gate(...)` and `AsyncClient.gate(...)`
return a `GateResult`; `python -m reviewapp_client gate ...` is the command line a CI job runs
(see __main__.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# The server takes up to 100,000 results in one run (and a body of at most 10 MB by default).
MAX_RESULTS = 100_000
# Scoring a whole dataset is one request: give it longer than an ordinary call.
GATE_TIMEOUT = 120.0
_FIELDS = ("item_id", "passed", "score", "output")


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class NeededItems:
    """How many items a confident claim of `target` would need: `n` (None when no number
    would do at the observed pass rate), under `assumption` (`observed_rate`, `zero_failures`
    or `unreachable`); `enough` when the dataset already has them."""

    n: int | None
    assumption: str
    target: float | None
    enough: bool

    @classmethod
    def from_api(cls, data: Any) -> NeededItems | None:
        if not isinstance(data, dict):
            return None
        return cls(
            _int(data.get("n")), str(data.get("assumption") or ""), _float(data.get("target")), bool(data.get("enough"))
        )


@dataclass(frozen=True)
class Segment:
    kind: str  # "tag" or "split"
    name: str
    n: int
    passed: int
    pass_rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class GateResult:
    """The run the server stored and its verdict. `passed` is `gate == "pass"`; `reasons` say
    why it failed, `warnings` what was not checked; `missing` lists items with no result
    (counted as failed). `raw` is the whole answer."""

    id: int
    gate: str
    reasons: list[str]
    warnings: list[str]
    dataset: int | None
    version: int | None
    version_hash: str
    agent_version: str
    item_count: int
    passed_count: int
    critical_count: int
    critical_passed_count: int
    pass_rate: float | None
    critical_pass_rate: float | None
    wilson_lower: float | None
    critical_lower: float | None
    needed_items: NeededItems | None
    critical_needed_items: int | None
    segments: list[Segment]
    missing: list[str]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.gate == "pass"

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> GateResult:
        return cls(
            id=int(data["id"]),
            gate=str(data["gate"]),
            reasons=[str(r) for r in data.get("reasons") or []],
            warnings=[str(w) for w in data.get("warnings") or []],
            dataset=_int(data.get("dataset")),
            version=_int(data.get("version")),
            version_hash=str(data.get("version_hash") or ""),
            agent_version=str(data.get("agent_version") or ""),
            item_count=_int(data.get("item_count")) or 0,
            passed_count=_int(data.get("passed_count")) or 0,
            critical_count=_int(data.get("critical_count")) or 0,
            critical_passed_count=_int(data.get("critical_passed_count")) or 0,
            pass_rate=_float(data.get("pass_rate")),
            critical_pass_rate=_float(data.get("critical_pass_rate")),
            wilson_lower=_float(data.get("wilson_lower")),
            critical_lower=_float(data.get("critical_lower")),
            needed_items=NeededItems.from_api(data.get("needed_items")),
            critical_needed_items=_int(data.get("critical_needed_items")),
            segments=[
                Segment(
                    kind=str(s.get("kind") or ""),
                    name=str(s.get("name") or ""),
                    n=_int(s.get("n")) or 0,
                    passed=_int(s.get("passed")) or 0,
                    pass_rate=_float(s.get("pass_rate")),
                    low=_float(s.get("low")),
                    high=_float(s.get("high")),
                )
                for s in data.get("segments") or []
                if isinstance(s, dict)
            ],
            missing=[str(m) for m in data.get("missing") or []],
            raw=data,
        )


def run_path(dataset_id: int, version: int) -> str:
    for name, value in (("dataset_id", dataset_id), ("version", version)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a whole number from 1.")
    return f"datasets/{dataset_id}/versions/{version}/runs"


def run_body(agent_version: str, results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The request body, checked before it is sent (the server checks again)."""
    if not isinstance(agent_version, str) or not agent_version:
        raise ValueError("agent_version must be a non-empty string.")
    rows = []
    for i, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise ValueError(f"results[{i}] must be a mapping with item_id and passed.")
        if not isinstance(result.get("item_id"), str) or not isinstance(result.get("passed"), bool):
            raise ValueError(f"results[{i}] needs item_id (a string) and passed (true or false).")
        rows.append({k: result[k] for k in _FIELDS if k in result})
    if len(rows) > MAX_RESULTS:
        raise ValueError(f"At most {MAX_RESULTS} results per run; got {len(rows)}.")
    return {"agent_version": agent_version, "results": rows}


def read_jsonl(stream: IO[str]) -> list[dict[str, Any]]:
    """Results from JSON Lines: one `{"item_id", "passed", "score"?, "output"?}` object a
    line; blank lines are skipped. Raises ValueError naming the line."""
    rows = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: not JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise ValueError(f"line {number}: expected an object with item_id and passed")
        rows.append(row)
    return rows


def read_results(path: str) -> list[dict[str, Any]]:
    """`read_jsonl` of a file, `-` for standard input."""
    import sys

    if path == "-":
        return read_jsonl(sys.stdin)
    with Path(path).open(encoding="utf-8") as stream:
        return read_jsonl(stream)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def summary_lines(result: GateResult) -> list[str]:
    """What the command line prints: the verdict, the rates and the reasons."""
    lines = [
        f"Gate: {result.gate.upper()}  (run {result.id}: {result.agent_version} on dataset {result.dataset} "
        f"version {result.version})",
        f"Pass rate: {_pct(result.pass_rate)} ({result.passed_count} of {result.item_count}); "
        f"lower bound {_pct(result.wilson_lower)}",
    ]
    if result.critical_count:
        lines.append(
            f"Critical pass rate: {_pct(result.critical_pass_rate)} ({result.critical_passed_count} of "
            f"{result.critical_count}); lower bound {_pct(result.critical_lower)}"
        )
    else:
        lines.append("Critical pass rate: no critical items")
    need = result.needed_items
    if need is not None:
        if need.n is None:
            lines.append(f"Items a confident claim of {_pct(need.target)} needs: none would do at this pass rate")
        else:
            how = "at the observed pass rate" if need.assumption == "observed_rate" else "with no failure"
            lines.append(f"Items a confident claim of {_pct(need.target)} needs: {need.n} ({how})")
    for segment in result.segments:
        if segment.pass_rate is not None and segment.pass_rate < 1:
            lines.append(
                f"  {segment.kind} {segment.name}: {_pct(segment.pass_rate)} ({segment.passed} of {segment.n})"
            )
    if result.reasons:
        lines.append("Reasons:")
        lines += [f"  - {reason}" for reason in result.reasons]
    if result.warnings:
        lines.append("Warnings:")
        lines += [f"  - {warning}" for warning in result.warnings]
    return lines
