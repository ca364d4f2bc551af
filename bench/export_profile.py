"""A dataset-version export in this process, no HTTP: rows per CPU-second of the export alone
(the selectors and writers the export views use), and with `--cprofile` where that CPU goes.
On a shared machine CPU-seconds move much less than wall time; compare runs, not machines.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/reviewapp_bench \
        .venv/bin/python bench/export.py --items 20000 --keep-data   # loads the rows once
    DATABASE_URL=... .venv/bin/python bench/export_profile.py [--formats jsonl parquet] [--rounds 3] [--cprofile]

Reads the version bench/export.py left (`--keep-data`); each round exports it whole, and the
best round is printed (the least disturbed by other processes).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from pathlib import Path

from harness import setup_django

ORG = "bench-export"


def _backend_cpu_s(pid: int) -> float:
    """CPU seconds of the PostgreSQL backend serving this process (same machine): work moved
    into SQL is still work, and is counted."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chunks(version, fmt: str):  # the models load after setup_django
    from evaluation import exports, selectors_exports

    if hasattr(selectors_exports, "dataset_version_chunks"):
        return selectors_exports.dataset_version_chunks(version=version, fmt=fmt, progress=exports.Progress())
    return exports.stream(fmt, selectors_exports.dataset_version_batches(version=version))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", nargs="+", default=["jsonl", "parquet"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cprofile", action="store_true", help="print the top functions of one more round")
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    from evaluation.models import DatasetVersion

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [backend] = cursor.fetchone()
    version = DatasetVersion.objects.select_related("dataset").get(organization__slug=ORG, number=1)
    for fmt in args.formats:
        best = None
        for _ in range(args.rounds):
            cpu, db, wall = time.process_time(), _backend_cpu_s(backend), time.monotonic()
            size = sum(len(c) for c in chunks(version, fmt))
            cpu, db = time.process_time() - cpu, _backend_cpu_s(backend) - db
            best = min(best or (cpu + db, cpu, db, time.monotonic() - wall, size),
                       (cpu + db, cpu, db, time.monotonic() - wall, size))  # fmt: skip
        total, cpu, db, wall, size = best
        rows = version.item_count
        print(f"{fmt:8} {rows:,} rows, {size / 1e6:.1f} MB: {rows / total:,.0f} rows per CPU-second "
              f"(Python {cpu:.2f} s + PostgreSQL backend {db:.2f} s; {rows / wall:,.0f} rows/s wall; "
              f"best of {args.rounds})", flush=True)  # fmt: skip
        if args.cprofile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in chunks(version, fmt):
                pass
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
