"""Row locks for evaluation. Every function that locks must run inside transaction.atomic();
the caller holds the lock until its transaction ends."""

from __future__ import annotations

from evaluation.models import Dataset


def dataset_lock(*, dataset_id: int) -> Dataset:
    """Lock one dataset row. Freezing and tagging versions hold it, so two freezes never pick
    the same number and a tag never names two versions (SQLite ignores the lock but runs one
    writer at a time)."""
    return Dataset.objects.filter(pk=dataset_id).order_by("pk").select_for_update(of=("self",)).get()
