"""The command line: `python -m reviewapp_client gate ...` posts a run's results to the release
gate, prints the pass rates, the verdict and the reasons, and exits 0 when the gate passes, 1
when it fails and 2 on a usage, file or HTTP error, so a CI step fails with the release."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from reviewapp_client.errors import ReviewappError
from reviewapp_client.gate import read_results, summary_lines

PASSED, FAILED, ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reviewapp_client", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gate = commands.add_parser(
        "gate",
        help="Score an agent version on a golden dataset version and fail on a failing gate.",
        description="Exit status: 0 the gate passed, 1 it failed, 2 a usage, file or HTTP error.",
    )
    gate.add_argument("--base-url", default=os.environ.get("REVIEWAPP_URL"), help="Default: $REVIEWAPP_URL.")
    gate.add_argument(
        "--api-key", default=os.environ.get("REVIEWAPP_API_KEY"), help="A project key. Default: $REVIEWAPP_API_KEY."
    )
    gate.add_argument("--dataset", type=int, required=True, help="The dataset's id.")
    gate.add_argument("--version", type=int, required=True, help="The dataset version's number.")
    gate.add_argument("--agent-version", required=True, help="The agent version the results are of.")
    gate.add_argument(
        "--results",
        required=True,
        help='JSON Lines, one {"item_id", "passed", "score"?, "output"?} per line; - for standard input.',
    )
    gate.add_argument("--json", action="store_true", help="Print the server's whole answer as JSON instead.")
    gate.add_argument("--timeout", type=float, default=120.0, help="Seconds to wait for the answer (default 120).")
    return parser


def _gate(args: argparse.Namespace, out: Any, err: Any) -> int:
    from reviewapp_client.client import Client

    missing = [flag for flag, value in (("--base-url", args.base_url), ("--api-key", args.api_key)) if not value]
    if missing:
        print(f"error: {' and '.join(missing)} (or REVIEWAPP_URL / REVIEWAPP_API_KEY) required", file=err)
        return ERROR
    try:
        results = read_results(args.results)
    except (OSError, ValueError) as exc:
        print(f"error: {args.results}: {exc}", file=err)
        return ERROR
    try:
        with Client(args.base_url, args.api_key, timeout=args.timeout) as client:
            result = client.gate(args.dataset, args.version, args.agent_version, results)
    except (ReviewappError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return ERROR
    if args.json:
        print(json.dumps(result.raw, indent=2, sort_keys=True), file=out)
    else:
        print("\n".join(summary_lines(result)), file=out)
    return PASSED if result.passed else FAILED


def main(argv: Sequence[str] | None = None, *, out: Any = None, err: Any = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    if args.command == "gate":
        return _gate(args, out, err)
    return ERROR  # pragma: no cover - argparse refuses unknown commands


if __name__ == "__main__":
    sys.exit(main())
