"""Where a benchmark server's memory goes: tracemalloc snapshots on request, for bench/wait.py.

Loaded by bench/settings_wait.py only when BENCH_TRACEMALLOC names a directory (never in the
app's own settings). Each server process traces allocations (25 frames; slow, for diagnosis
only) once the benchmark writes `start` to `<dir>/request`, and whenever it then writes a
number there, dumps a snapshot to `<dir>/<pid>-<number>.snap`. `python bench/memtrace.py <dir>` prints, for each
process, what grew most between its first and last snapshots, by allocation site.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path


def install(directory: str) -> None:
    # Tracing starts when the benchmark asks (`start`), after the server is up: tracing
    # Django's start-up as well made it take minutes.
    threading.Thread(target=_watch, args=(Path(directory),), name="bench-memtrace", daemon=True).start()


def _watch(directory: Path) -> None:
    done = ""
    while True:
        time.sleep(0.5)
        try:
            wanted = (directory / "request").read_text().strip()
        except OSError:
            continue
        if wanted == "start":
            if not tracemalloc.is_tracing():
                tracemalloc.start(25)
            done = wanted
        elif wanted and wanted != done and tracemalloc.is_tracing():
            gc.collect()
            tracemalloc.take_snapshot().dump(str(directory / f"{os.getpid()}-{wanted}.snap"))
            done = wanted


def report(directory: str, top: int = 25) -> None:
    by_pid: dict[str, list[Path]] = {}
    for snap in Path(directory).glob("*.snap"):
        by_pid.setdefault(snap.name.split("-")[0], []).append(snap)
    for pid, snaps in sorted(by_pid.items()):
        snaps.sort(key=lambda p: int(p.stem.split("-")[1]))
        if len(snaps) < 2:
            continue
        first = tracemalloc.Snapshot.load(str(snaps[0]))
        last = tracemalloc.Snapshot.load(str(snaps[-1]))
        totals = [sum(s.size for s in tracemalloc.Snapshot.load(str(p)).statistics("filename")) for p in snaps]
        print(f"pid {pid}: traced MB by snapshot {[round(t / 2**20, 2) for t in totals]}")
        for stat in last.compare_to(first, "traceback")[:top]:
            print(f"  {stat.size_diff / 1024:+.1f} KB {stat.count_diff:+d} blocks")
            for line in stat.traceback.format()[-12:]:
                print("     ", line)


if __name__ == "__main__":
    report(sys.argv[1])
