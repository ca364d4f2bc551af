"""Pairwise comparisons: a labeling queue of kind "pairwise" built from two runs on one dataset
version, or from pairs of conversations answering the same input, and the record of where its
pairs came from (PairwiseComparison). The queue itself is labeling's (labeling.services)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evaluation.models import Dataset, DatasetRun, DatasetRunResult, DatasetVersionItem, PairwiseComparison
from labeling import pairwise as labeling_pairwise
from labeling import services as labeling_services
from reviewapp import validation
from reviewapp.errors import ValidationFailed
from reviewapp.models import Conversation, Project

MAX_NAME = 200  # labeling.Queue.name
MAX_ANNOTATIONS = 10
MAX_INSTRUCTIONS = 50_000
MAX_EXTERNAL_ID = 255
# labeling.PairwiseItem's columns.
MAX_KEY = 64
MAX_TAGS = 50
MAX_VERSION = 100


@dataclass(frozen=True)
class PairwiseSettings:
    """The queue's settings, as checked by `settings_parse`."""

    name: str
    annotations_per_item: int = 1
    questions: tuple[dict[str, Any], ...] = ()
    instructions: str = ""
    seed: int | None = None


def settings_parse(body: dict[str, Any], *, default_name: str) -> PairwiseSettings:
    """`name`, `annotations_per_item`, `questions`, `instructions`, `seed` from a request body,
    each checked; a 400 names the field."""
    name = body.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise validation.InputError(f"Text of 1 to {MAX_NAME} characters.", "name")
    validation.check_text(name, field="name")
    overlap = body.get("annotations_per_item", 1)
    if type(overlap) is not int or not 1 <= overlap <= MAX_ANNOTATIONS:
        raise validation.InputError(f"A whole number from 1 to {MAX_ANNOTATIONS}.", "annotations_per_item")
    instructions = body.get("instructions", "")
    if not isinstance(instructions, str) or len(instructions) > MAX_INSTRUCTIONS:
        raise validation.InputError(f"Text of at most {MAX_INSTRUCTIONS} characters.", "instructions")
    validation.check_text(instructions, field="instructions")
    seed = body.get("seed")
    if seed is not None:
        validation.check_int(seed, field="seed", bounds=validation.POSITIVE_BIG)
    questions = labeling_services.pairwise_questions_parse(body.get("questions"))
    return PairwiseSettings(
        name=name.strip(),
        annotations_per_item=overlap,
        questions=tuple(questions),
        instructions=instructions,
        seed=seed,
    )


def _seed(settings: PairwiseSettings) -> int:
    return settings.seed if settings.seed is not None else secrets.randbelow(2**62)


def _create(
    *,
    project: Project,
    settings: PairwiseSettings,
    pairs: Sequence[labeling_services.PairIn],
    skipped: Counter[str],
    baseline_version: str,
    candidate_version: str,
    actor: AbstractBaseUser | None,
    **source: Any,
) -> PairwiseComparison:
    if not pairs:
        raise ValidationFailed(
            "No pair to compare: every item was skipped.",
            errors={"pairs": [f"Skipped: {', '.join(f'{k} {v}' for k, v in sorted(skipped.items())) or 'none'}."]},
        )
    seed = _seed(settings)
    with transaction.atomic():
        queue = labeling_services.pairwise_queue_create(
            project=project,
            spec=labeling_services.PairwiseQueueSpec(
                name=settings.name,
                baseline_version=baseline_version,
                candidate_version=candidate_version,
                seed=seed,
                annotations_per_item=settings.annotations_per_item,
                questions=settings.questions,
                instructions=settings.instructions,
                description=f"{candidate_version} (candidate) against {baseline_version} (baseline)",
            ),
            pairs=pairs,
            user=actor,
        )
        return PairwiseComparison.objects.create(
            organization_id=project.organization_id,
            project=project,
            queue=queue,
            baseline_agent_version=baseline_version,
            candidate_agent_version=candidate_version,
            seed=seed,
            item_count=len(pairs),
            skipped=dict(sorted(skipped.items())),
            created_by=actor,
            **source,
        )


def pairwise_from_runs(
    *,
    dataset: Dataset,
    baseline_run: DatasetRun,
    candidate_run: DatasetRun,
    settings: PairwiseSettings,
    actor: AbstractBaseUser | None = None,
) -> PairwiseComparison:
    """One item per item of the runs' dataset version that has an output in both runs and a
    source conversation. Items missing from either run (or with a null output), without a
    conversation, or on a conversation another item already uses (a queue holds a conversation
    once) are skipped and counted by reason."""
    for field, run in (("baseline_run", baseline_run), ("candidate_run", candidate_run)):
        if run.dataset_id != dataset.pk:
            raise validation.InputError("Not a run of this dataset.", field)
    if baseline_run.pk == candidate_run.pk:
        raise validation.InputError("Compare two different runs.", "candidate_run")
    if baseline_run.version_id != candidate_run.version_id:
        raise validation.InputError("Both runs must be on the same dataset version.", "candidate_run")
    outputs = {
        run.pk: dict(DatasetRunResult.objects.filter(run=run).values_list("item_id", "output"))
        for run in (baseline_run, candidate_run)
    }
    items = DatasetVersionItem.objects.filter(version_id=baseline_run.version_id).order_by("id")
    skipped: Counter[str] = Counter()
    used: set[int] = set()
    pairs = []
    for pk, key, conversation_id, tags, input_messages in items.values_list(
        "id", "key", "conversation_id", "tags", "input_messages"
    ):
        baseline = outputs[baseline_run.pk].get(pk)
        candidate = outputs[candidate_run.pk].get(pk)
        if baseline is None:
            skipped["missing_baseline"] += 1
        elif candidate is None:
            skipped["missing_candidate"] += 1
        elif conversation_id is None:
            skipped["no_conversation"] += 1
        elif conversation_id in used:
            skipped["duplicate_conversation"] += 1
        else:
            used.add(conversation_id)
            pairs.append(
                labeling_services.PairIn(
                    conversation_id=conversation_id,
                    key=key,
                    baseline_output=baseline,
                    candidate_output=candidate,
                    tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
                    input_messages=input_messages if isinstance(input_messages, list) else [],
                )
            )
    return _create(
        project=dataset.project,
        settings=settings,
        pairs=pairs,
        skipped=skipped,
        baseline_version=baseline_run.agent_version,
        candidate_version=candidate_run.agent_version,
        actor=actor,
        dataset=dataset,
        version_id=baseline_run.version_id,
        baseline_run=baseline_run,
        candidate_run=candidate_run,
    )


@dataclass(frozen=True)
class ConversationPairIn:
    baseline: str  # external ids
    candidate: str
    key: str = ""
    tags: tuple[str, ...] = ()


def conversation_pairs_parse(raw: Any) -> list[ConversationPairIn]:
    """`[{"baseline": <external_id>, "candidate": <external_id>, "key"?, "tags"?}]`, checked."""
    if not isinstance(raw, list) or not raw:
        raise validation.InputError("Send a non-empty list of pairs.", "pairs")
    if len(raw) > labeling_services.MAX_PAIRS:
        raise validation.InputError(f"At most {labeling_services.MAX_PAIRS} pairs.", "pairs")
    out = []
    for i, row in enumerate(raw):
        where = f"pairs[{i}]"
        if not isinstance(row, dict):
            raise validation.InputError("Each pair must be an object.", where)
        extra = set(row) - {"baseline", "candidate", "key", "tags"}
        if extra:
            raise validation.InputError(f"Unknown field(s): {', '.join(sorted(extra)[:5])}.", where)
        validation.check_json(row, path=where)
        ids = []
        for side in ("baseline", "candidate"):
            value = row.get(side)
            if not isinstance(value, str) or not value or len(value) > MAX_EXTERNAL_ID:
                raise validation.InputError(
                    f"A conversation's external id: 1 to {MAX_EXTERNAL_ID} characters.", f"{where}.{side}"
                )
            ids.append(value)
        key = row.get("key", "")
        if not isinstance(key, str) or len(key) > MAX_KEY:
            raise validation.InputError("Text of at most 64 characters.", f"{where}.key")
        tags = row.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in tags):
            raise validation.InputError("A list of tags (text of 1 to 100 characters).", f"{where}.tags")
        if len(tags) > MAX_TAGS:
            raise validation.InputError("At most 50 tags.", f"{where}.tags")
        out.append(ConversationPairIn(ids[0], ids[1], key, tuple(tags)))
    return out


def _version_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_VERSION:
        raise validation.InputError("Name the agent version: text of 1 to 100 characters.", field)
    validation.check_text(value, field=field)
    return value


def pairwise_from_conversations(
    *,
    project: Project,
    pairs: Sequence[ConversationPairIn],
    baseline_version: Any,
    candidate_version: Any,
    settings: PairwiseSettings,
    actor: AbstractBaseUser | None = None,
) -> PairwiseComparison:
    """One item per pair of conversations of the project: the messages they share from the start
    are the input, what each says after that is its output. The item hangs on the baseline's
    conversation. Unknown external ids, identical conversations and a baseline conversation
    used twice are skipped and counted."""
    baseline_version = _version_name(baseline_version, "baseline_version")
    candidate_version = _version_name(candidate_version, "candidate_version")
    wanted = {p.baseline for p in pairs} | {p.candidate for p in pairs}
    found = {
        external_id: (pk, messages)
        for pk, external_id, messages in Conversation.objects.filter(
            organization_id=project.organization_id, project=project, external_id__in=wanted
        ).values_list("id", "external_id", "messages")
    }
    skipped: Counter[str] = Counter()
    used: set[int] = set()
    built = []
    for pair in pairs:
        if pair.baseline not in found or pair.candidate not in found:
            skipped["unknown_conversation"] += 1
            continue
        (baseline_id, left), (_, right) = found[pair.baseline], found[pair.candidate]
        left = left if isinstance(left, list) else []
        right = right if isinstance(right, list) else []
        shared = labeling_pairwise.common_prefix(left, right)
        if baseline_id in used:
            skipped["duplicate_conversation"] += 1
        elif shared == len(left) and shared == len(right):
            skipped["identical"] += 1
        else:
            used.add(baseline_id)
            built.append(
                labeling_services.PairIn(
                    conversation_id=baseline_id,
                    key=pair.key or labeling_pairwise.pair_key(pair.baseline, pair.candidate),
                    baseline_output=left[shared:],
                    candidate_output=right[shared:],
                    tags=pair.tags,
                    input_messages=left[:shared],
                )
            )
    return _create(
        project=project,
        settings=settings,
        pairs=built,
        skipped=skipped,
        baseline_version=baseline_version,
        candidate_version=candidate_version,
        actor=actor,
    )
