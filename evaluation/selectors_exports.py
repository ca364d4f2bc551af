"""Export reads, tenant first: what may be exported, and its rows in batches (pure row building
and the writers are in evaluation/exports.py).

Three ways to a dataset version's file, one set of rows (dataset_version_chunks picks): on
PostgreSQL the JSONL lines are built by the database (evaluation/sql.py), Python only joins
them; Parquet reads each page as columns (values_list, no dict per row) into Arrow arrays; CSV,
the OpenAI chat format and SQLite's JSONL build a dict per row (dataset_version_batches). Tests
hold the three to the same rows.

Rows are read a page at a time by keyset (`id > last ORDER BY id LIMIT n`), each page its own
short query, rather than through one server-side cursor: a download lasts as long as the
client takes to read it, and a cursor would hold a transaction (and the snapshot vacuum must
keep) open that long, or, in autocommit (`WITH HOLD`), have PostgreSQL materialise every row
before the first byte leaves. A page is an index range scan on the primary key, so the cost
is linear in the rows exported and memory is one page, on every database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import TextField
from django.db.models.fields.json import KT, KeyTransform
from django.db.models.functions import Cast, Coalesce

from evaluation import exports
from evaluation import sql as sql_texts
from evaluation.models import Dataset, DatasetVersion, DatasetVersionItem
from labeling import selectors as labeling_selectors
from labeling.models import ItemStatus, Label, Queue, QueueItem
from reviewapp import validation
from reviewapp.errors import NotFound
from reviewapp.models import Organization, Project

# Rows per page (and per Parquet row group, per chunk sent). 2,000 rows of typical
# conversations are a few MB in memory: large enough that the per-query cost is amortised.
CHUNK_SIZE = 2000

_DATASET_ITEM_FIELDS = ("id", "key", "conversation_id", "queue_item_id", "critical", "split")
# Read as the database's JSON text and written out unread (exports.JsonText): decoding and
# re-encoding them was most of an export's time. Lineage fields are picked out in SQL.
_DATASET_ITEM_JSON = {
    "input_messages": "input_messages",
    "reference_output": "reference_output",
    "expected_labels": "expected_labels",
    "tags": "tags",
    "label_ids": "lineage__label_ids",
    "annotators": "lineage__annotators",
    "label_details": "lineage__labels",
}
# Lineage scalars, each under the first name present (the dataset service writes the first).
_DATASET_LINEAGE_TEXT = {
    "reviewer": ("lineage__reviewer",),
    "final_source": ("lineage__final_source",),
    "label_source": ("lineage__made_by", "lineage__label_source", "lineage__source"),
    "schema_name": ("lineage__rubric__name", "lineage__schema__name", "lineage__schema_name"),
    "schema_version": ("lineage__rubric__version", "lineage__schema__version", "lineage__schema_version"),
    "queue_id": ("lineage__queue_id",),
    "lineage_external_id": ("lineage__external_id",),
}


def _json_as_text(path: str) -> Cast:
    if "__" not in path:
        return Cast(path, TextField())
    column, key = path.split("__", 1)
    return Cast(KeyTransform(key, column), TextField())


_QUEUE_ITEM_FIELDS = (
    "id",
    "queue_id",
    "conversation_id",
    "final_answers",
    "final_source",
)


def dataset_version_for_export(
    *, organization: Organization, project: Project | None, dataset_id: int, number: int
) -> DatasetVersion:
    """Version `number` of a dataset of the organization (of `project` only, for a project
    key). Anything else, including another tenant's dataset, is not found."""
    if not validation.is_id(dataset_id) or not validation.is_id(number):
        raise NotFound("Dataset version not found.")
    datasets = Dataset.objects.filter(organization=organization, pk=dataset_id)
    if project is not None:
        datasets = datasets.filter(project=project)
    version = (
        DatasetVersion.objects.filter(organization=organization, dataset__in=datasets, number=number)
        .select_related("dataset", "dataset__project")
        .first()
    )
    if version is None:
        raise NotFound("Dataset version not found.")
    return version


def queue_for_export(*, organization: Organization, queue_id: int) -> Queue:
    if not validation.is_id(queue_id):
        raise NotFound("Queue not found.")
    return labeling_selectors.queue_get(organization=organization, queue_id=queue_id)


def _dataset_item_reads() -> dict[str, Any]:
    """The JSON columns and lineage lists as text (`<name>_text`), the lineage scalars as text."""
    as_text: dict[str, Any] = {f"{name}_text": _json_as_text(path) for name, path in _DATASET_ITEM_JSON.items()}
    as_text.update({name: Coalesce(*(KT(p) for p in paths)) if len(paths) > 1 else KT(paths[0])
                    for name, paths in _DATASET_LINEAGE_TEXT.items()})  # fmt: skip
    return as_text


def dataset_version_chunks(
    *, version: DatasetVersion, fmt: str, progress: exports.Progress | None = None
) -> Iterator[bytes]:
    """The version's export in `fmt`, as chunks of bytes, about one per page (empty chunks are
    not yielded), by the quickest path the database allows for the format."""
    progress = progress if progress is not None else exports.Progress()
    if fmt == "jsonl" and connection.vendor == "postgresql":
        chunks = exports.write_jsonl_lines(dataset_version_lines(version=version), progress)
    elif fmt == "parquet":
        batches = (
            exports.dataset_record_batch(page, dataset_id=version.dataset_id, dataset_version=version.number)
            for page in dataset_version_columns(version=version)
        )
        chunks = exports.write_record_batches(batches, progress)
    else:
        chunks = exports.WRITERS[fmt](dataset_version_batches(version=version), progress)
    return (chunk for chunk in chunks if chunk)


def dataset_version_lines(*, version: DatasetVersion, chunk_size: int | None = None) -> Iterator[list[str]]:
    """PostgreSQL only: the version's JSONL lines, `chunk_size` a page, each built by the
    database (sql.DATASET_VERSION_JSONL_PAGE): the lines write_jsonl makes of
    dataset_version_batches. Run through Django's cursor, not prepared: a generic plan would
    not know how many rows the version has, and a page is planned in well under a millisecond
    (as the ORM's query it replaces is)."""
    chunk_size = chunk_size or CHUNK_SIZE
    params = {
        "version": version.pk,
        "dataset_id": version.dataset_id,
        "dataset_version": version.number,
        "limit": chunk_size,
        "after": 0,
    }
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql_texts.DATASET_VERSION_JSONL_PAGE, params)
            page = cursor.fetchall()
        if not page:
            return
        params["after"] = page[-1][0]
        yield [line for _, line in page]
        if len(page) < chunk_size:
            return


# What dataset_version_columns reads, by the names exports.dataset_record_batch takes.
_COLUMN_READS = {
    "key": "key",
    "queue_item_id": "queue_item_id",
    "conversation_id": "conversation_id",
    "critical": "critical",
    "split": "split",
    "conversation_external_id": "conversation__external_id",
    **{name: f"{name}_text" for name in _DATASET_ITEM_JSON},
    **{name: name for name in _DATASET_LINEAGE_TEXT},
}


def dataset_version_columns(
    *, version: DatasetVersion, chunk_size: int | None = None
) -> Iterator[dict[str, tuple[Any, ...]]]:
    """The version's items a page at a time as columns (exports.dataset_record_batch's names):
    read with values_list, turned into columns with one zip, no dict per row."""
    chunk_size = chunk_size or CHUNK_SIZE
    base = DatasetVersionItem.objects.filter(version=version).order_by("pk").annotate(**_dataset_item_reads())
    reads = ("id", *_COLUMN_READS.values())
    last = 0
    while True:
        page = list(base.filter(pk__gt=last).values_list(*reads)[:chunk_size])
        if not page:
            return
        last = page[-1][0]
        _, *columns = zip(*page, strict=True)
        yield dict(zip(_COLUMN_READS, columns, strict=True))
        if len(page) < chunk_size:
            return


def dataset_version_batches(*, version: DatasetVersion, chunk_size: int | None = None) -> Iterator[list[dict]]:
    """The version's items in the order they were frozen, `chunk_size` rows per batch."""
    chunk_size = chunk_size or CHUNK_SIZE
    base = DatasetVersionItem.objects.filter(version=version).order_by("pk")
    as_text = _dataset_item_reads()
    fields = (*_DATASET_ITEM_FIELDS, "conversation__external_id", *as_text)
    last = 0
    while True:
        page = list(base.filter(pk__gt=last).annotate(**as_text).values(*fields)[:chunk_size])
        if not page:
            return
        last = page[-1]["id"]
        yield [
            exports.dataset_row(
                {
                    **record,
                    "dataset_id": version.dataset_id,
                    "dataset_version": version.number,
                    "external_id": record["conversation__external_id"] or record["lineage_external_id"],
                    **{name: exports.json_text(record[f"{name}_text"]) for name in _DATASET_ITEM_JSON},
                }
            )
            for record in page
        ]
        if len(page) < chunk_size:
            return


def _queue_items(ids: list[int] | None, queue: Queue, *, after: int, limit: int | None) -> list[dict[str, Any]]:
    rows = QueueItem.objects.filter(queue=queue).order_by("pk")
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    else:
        # Final items only; gold checks measure annotators and are not data.
        rows = rows.filter(status=ItemStatus.COMPLETED, is_gold=False, pk__gt=after)
    values = rows.values(
        *_QUEUE_ITEM_FIELDS,
        "reviewed_by__username",
        "conversation__external_id",
        "conversation__messages",
        "conversation__tags",
    )
    page = list(values[:limit] if limit else values)
    for item in page:
        item["external_id"] = item.pop("conversation__external_id")
        item["messages"] = item.pop("conversation__messages")
        item["tags"] = item.pop("conversation__tags")
        item["reviewer"] = item.pop("reviewed_by__username")
        item["schema_name"] = queue.schema.name
    return page


def _labels(queue: Queue, *, item_ids: list[int] | None, after: int, limit: int | None) -> list[dict[str, Any]]:
    rows = Label.objects.filter(queue=queue).order_by("pk")
    rows = rows.filter(item_id__in=item_ids) if item_ids is not None else rows.filter(pk__gt=after)
    values = rows.values("id", "item_id", "answers", "created_at", "user__username", "schema_version__version")
    page = list(values[:limit] if limit else values)
    for label in page:
        label["annotator"] = label.pop("user__username")
        label["schema_version"] = label.pop("schema_version__version")
    return page


def queue_batches(*, queue: Queue, rows: str = "items", chunk_size: int | None = None) -> Iterator[list[dict]]:
    """`rows="items"`: one row per completed item (its final answers; its labels in the
    lineage). `rows="labels"`: one row per label of the queue, whatever its item's state.
    Two queries a page: the page, then what it refers to (the items' labels, the labels' items)."""
    chunk_size = chunk_size or CHUNK_SIZE
    last = 0
    while True:
        if rows == "labels":
            labels = _labels(queue, item_ids=None, after=last, limit=chunk_size)
            if not labels:
                return
            last = labels[-1]["id"]
            items = {
                i["id"]: i for i in _queue_items(sorted({la["item_id"] for la in labels}), queue, after=0, limit=None)
            }
            size = len(labels)
            yield exports.queue_label_rows(items, labels)
        else:
            page = _queue_items(None, queue, after=last, limit=chunk_size)
            if not page:
                return
            last = page[-1]["id"]
            by_item: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for label in _labels(queue, item_ids=[i["id"] for i in page], after=0, limit=None):
                by_item[label["item_id"]].append(label)
            size = len(page)
            yield exports.queue_item_rows(page, by_item)
        if size < chunk_size:
            return


def queue_export_stem(queue: Queue, rows: str) -> str:
    return f"queue-{queue.pk}-{queue.name}-{rows}"


def dataset_export_stem(version: DatasetVersion) -> str:
    return f"dataset-{version.dataset_id}-{version.dataset.name}-v{version.number}"


def dataset_find(*, ref: str, organization_slug: str | None = None) -> Dataset:
    """For the command line (an operator, no tenant): a dataset by id, or by
    "<project slug>/<dataset name>" (with the organization's slug when two organizations
    have such a project). Raises NotFound saying what was looked for."""
    datasets = Dataset.objects.select_related("project", "organization")
    if organization_slug:
        datasets = datasets.filter(organization__slug=organization_slug)
    if ref.isascii() and ref.isdigit():
        found = list(datasets.filter(pk=int(ref))[:2]) if validation.is_id(int(ref)) else []
    else:
        project_slug, _, name = ref.partition("/")
        found = list(datasets.filter(project__slug=project_slug, name=name)[:2])
    if not found:
        raise NotFound(f"No dataset {ref!r}" + (f" in {organization_slug!r}." if organization_slug else "."))
    if len(found) > 1:
        raise NotFound(f"{ref!r} names datasets in several organizations: add --organization.")
    return found[0]


def dataset_version_numbers(*, dataset: Dataset) -> list[int]:
    return list(DatasetVersion.objects.filter(dataset=dataset).order_by("number").values_list("number", flat=True))


def queue_find(*, queue_id: int) -> Queue:
    """For the command line: a queue by id, in whatever organization."""
    queue = Queue.objects.select_related("organization", "schema").filter(pk=queue_id).first()
    if queue is None:
        raise NotFound(f"No queue {queue_id}.")
    return queue


def queue_export_size(*, queue: Queue, rows: str) -> int:
    if rows == "labels":
        return Label.objects.filter(queue=queue).count()
    return QueueItem.objects.filter(queue=queue, status=ItemStatus.COMPLETED, is_gold=False).count()
