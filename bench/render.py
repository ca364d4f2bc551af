"""How long does a hostile transcript take to render? Times reviewapp.rendering on pathological
inputs, beside a ceiling: Django's `escape` of the same text, the least any safe page must do.

    .venv/bin/python bench/render.py [--python-markdown]

Three tables:

1. **2 MB inputs**, through what a transcript page calls (`text_html` for a message, `json_html`
   for a tool call's arguments or result): above the cap, so an escaped preview and "show all".
2. **Parser scaling**: markdown-it-py plus nh3 alone (no cap, no budget) on 8 to 64 KB of each
   pathological kind, in µs per character. Flat across sizes means linear.
3. **Worst pages**: `transcript_turns` for transcripts built to spend the whole markdown budget
   with the slowest markup, and for many messages at the size cap.

No database. `--python-markdown` adds the renderer this replaced, on 2 and 4 KB of "[" (it
took 25 s on 8 KB).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWO_MB = 2 * 1024 * 1024


def best_of(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# Each kind is a unit repeated; the ones markdown-it-py is slowest on per character come first.
KINDS = {
    "[": "[",
    "![": "![",
    "*[": "*[",
    "a*": "a*",
    "a_": "a_",
    "lines": "a\n",
    "`a": "`a",
    "<": "<",
    "&": "&",
    "> nesting": "> ",
    "- nesting": "- ",
    "table row": "|a",
    "prose": "The quick brown fox jumps over the lazy dog. ",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python-markdown", action="store_true", help="also time Python-Markdown on runs of [")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.utils.html import escape

    from reviewapp import rendering
    from reviewapp.transcript import transcript_turns

    print(f"TEXT_CAP {rendering.TEXT_CAP:,} chars, MARKDOWN_MAX_MARKS {rendering.MARKDOWN_MAX_MARKS:,}, ", end="")
    print(f"PAGE_MARKS_BUDGET {rendering.PAGE_MARKS_BUDGET:,}, JSON_MAX_DEPTH {rendering.JSON_MAX_DEPTH}")

    print("\n1. 2 MB inputs (best of 3)")
    print(f"{'input':<24}{'rendered':>12}{'escape ceiling':>16}{'ratio':>8}")
    inputs: list[tuple[str, Callable[[str], object], str]] = [
        (f"message {kind!r}", rendering.text_html, repeat(unit, TWO_MB)) for kind, unit in KINDS.items()
    ]
    deep = "[" * (TWO_MB // 2) + "]" * (TWO_MB // 2)
    inputs += [
        ("tool JSON 1M-deep", rendering.json_html, deep),
        ("tool JSON flat", rendering.json_html, "[" + repeat('{"a": 1, "b": "x"}, ', TWO_MB - 10) + "1]"),
    ]
    for name, render, text in inputs:
        took = best_of(lambda render=render, text=text: render(text))
        ceiling = best_of(lambda text=text: escape(text))
        print(f"{name:<24}{took * 1000:>10.1f}ms{ceiling * 1000:>14.1f}ms{took / ceiling:>8.1f}")

    print("\n2. Parser scaling, uncapped: markdown-it-py + nh3, µs per character (best of 3)")
    sizes = [8 * 1024, 16 * 1024, 32 * 1024, 64 * 1024]
    print(f"{'kind':<14}" + "".join(f"{size // 1024:>8} KB" for size in sizes) + f"{'64 KB total':>14}")
    for kind, unit in KINDS.items():
        row = []
        for size in sizes:
            text = repeat(unit, size)
            row.append(best_of(lambda text=text: rendering.markdown_html(text), runs=2 if size > 16_384 else 3))
        cells = "".join(f"{took * 1e6 / size:>11.2f}" for took, size in zip(row, sizes, strict=True))
        print(f"{kind:<14}{cells}{row[-1] * 1000:>12.0f}ms")

    print("\n3. Worst pages: transcript_turns (best of 3)")
    limit = rendering.MARKDOWN_MAX_MARKS
    pages = {
        f"20 msgs, {limit:,} '![' marks each": [{"role": "user", "content": repeat("![", limit)} for _ in range(20)],
        f"20 msgs, {limit:,} '*[' marks each": [{"role": "user", "content": repeat("*[", limit)} for _ in range(20)],
        f"20 msgs, {limit:,} lines each": [{"role": "user", "content": repeat("a\n", 2 * limit)} for _ in range(20)],
        "20 msgs, 64 KB prose each": [
            {"role": "assistant", "content": repeat(KINDS["prose"], rendering.TEXT_CAP)} for _ in range(20)
        ],
        "2,000 msgs, 1 KB of links each": [{"role": "user", "content": repeat("- *a* [b](https://x)\n", 1024)}] * 2000,
        "1 msg of 2 MB '['": [{"role": "user", "content": "[" * TWO_MB}],
    }
    for name, messages in pages.items():
        took = best_of(lambda messages=messages: transcript_turns(messages))
        size = sum(len(m["content"]) for m in messages)
        ceiling = best_of(lambda messages=messages: [escape(m["content"]) for m in messages])
        print(f"{name:<34}{took * 1000:>9.1f}ms   ({size / 1e6:.2f} MB; escape ceiling {ceiling * 1000:.1f}ms)")

    if args.python_markdown:
        import markdown  # the renderer this replaced; not a dependency any more

        print("\nPython-Markdown (fenced_code, tables, sane_lists), once each")
        for size in (2048, 4096):
            started = time.perf_counter()
            markdown.markdown("[" * size, extensions=["fenced_code", "tables", "sane_lists"])
            print(f"{size:>6} x '[': {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
