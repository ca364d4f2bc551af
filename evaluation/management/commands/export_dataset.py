"""Export a dataset version (or, with --queue, a queue's labels) to a file or stdout, with a
progress bar on stderr. The rows and formats are the API's (README "Exports")."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation import exports, selectors_exports
from reviewapp.errors import NotFound


class Command(BaseCommand):
    help = (
        "Export a dataset version: export_dataset <dataset id | project/name> [--dataset-version N] "
        "[--format jsonl|csv|parquet|openai] [--out PATH]; or a queue's labels: export_dataset "
        "--queue ID [--rows items|labels]. Without --out the file goes to stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", nargs="?", help="A dataset id, or <project slug>/<dataset name>.")
        parser.add_argument(
            "--dataset-version", type=int, help="The version number (default: the newest); Django keeps --version."
        )
        parser.add_argument("--organization", help="The organization's slug, when project/name is ambiguous.")
        parser.add_argument("--queue", type=int, help="Export this queue's labels instead of a dataset.")
        parser.add_argument("--rows", choices=exports.ROW_MODES, default="items")
        parser.add_argument("--format", choices=exports.FORMATS, default="jsonl")
        parser.add_argument("--out", type=Path, help="The file to write (default: stdout).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")

    def handle(self, *args: Any, **options: Any) -> None:
        fmt = options["format"]
        progress = exports.Progress()
        try:
            if options["queue"] is not None:
                if options["dataset"]:
                    raise CommandError("Name a dataset or --queue, not both.")
                queue = selectors_exports.queue_find(queue_id=options["queue"])
                total = selectors_exports.queue_export_size(queue=queue, rows=options["rows"])
                batches = selectors_exports.queue_batches(queue=queue, rows=options["rows"])
                chunks = exports.stream(fmt, batches, progress)
                what = f"queue {queue.pk} ({queue.name}), one row per {options['rows'][:-1]}"
            elif options["dataset"]:
                dataset = selectors_exports.dataset_find(
                    ref=options["dataset"], organization_slug=options["organization"]
                )
                numbers = selectors_exports.dataset_version_numbers(dataset=dataset)
                if not numbers:
                    raise CommandError(f"Dataset {dataset.name!r} has no version yet: freeze one first.")
                number = options["dataset_version"] or numbers[-1]
                version = selectors_exports.dataset_version_for_export(
                    organization=dataset.organization, project=None, dataset_id=dataset.pk, number=number
                )
                total = version.item_count
                chunks = selectors_exports.dataset_version_chunks(version=version, fmt=fmt, progress=progress)
                what = f"dataset {dataset.pk} ({dataset.name}) version {number}"
            else:
                raise CommandError("Name a dataset (id or project/name) or --queue ID.")
        except NotFound as exc:
            raise CommandError(exc.message) from exc

        out: IO[bytes] = options["out"].open("wb") if options["out"] else sys.stdout.buffer
        started = time.monotonic()
        try:
            for chunk in chunks:
                out.write(chunk)
                if not options["no_progress"]:
                    self._bar(progress, total, started)
        finally:
            if options["out"]:
                out.close()
            else:
                out.flush()
        elapsed = max(time.monotonic() - started, 1e-9)
        skipped = f", {progress.skipped} without an accepted assistant turn left out" if progress.skipped else ""
        where = f" to {options['out']}" if options["out"] else ""
        self.stderr.write(
            f"\nExported {progress.rows} rows of {what} as {fmt}{where} in {elapsed:.1f} s "
            f"({progress.rows / elapsed:,.0f} rows/s){skipped}."
        )

    def _bar(self, progress: exports.Progress, total: int, started: float) -> None:
        done = progress.rows + progress.skipped
        rate = done / max(time.monotonic() - started, 1e-9)
        share = min(done / total, 1.0) if total else 1.0
        filled = int(share * 30)
        self.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} rows {rate:,.0f} rows/s", ending=""
        )
        self.stderr.flush()
