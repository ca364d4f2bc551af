"""Reads that look back over decided actions: the policy dry run, confidence envelopes, the
human decisions store, and the dashboard's figures. Tenant first; every query bounded in time
and rows; aggregates computed by the database (GROUP BY), per-row work only where the maths
needs the rows (a replay, an envelope's sample).

Human decisions are labels. `human_decisions` is the calibration store's input: one row per
action a person decided (they were all escalated: the policy decides the others), with the
agent's confidence, the rule that escalated it, the agent version, and the decision:
`approve`, `reject`, or `edited` (approved with args other than the agent asked, per the
deciding service's own diff, recorded on the `decided` event). Indexed for it: the partial
index `action_human_decided` on (project, action, decided_at) where a person decided.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate
from django.utils import timezone

from escalations import envelopes, policies, selectors, simulation, sql
from escalations.models import Action, ActionEvent, ActionStatus, DecidedBy, Outcome, Vote
from reviewapp.errors import ValidationFailed
from reviewapp.models import Organization, Project

# --- Shared expressions ----------------------------------------------------------------------

HUMAN_DECISIONS = ("approve", "reject", "edited")


def _edited() -> Exists:
    """The deciding service's own verdict on an approval: its `decided` event says whether the
    approved args differ from the agent's (a diff, so reordered keys are no edit)."""
    return Exists(ActionEvent.objects.filter(action=OuterRef("pk"), kind="decided", data__edited=True))


def _human_decision() -> Case:
    return Case(
        When(status=ActionStatus.REJECTED, then=Value("reject")),
        When(edited=True, then=Value("edited")),
        default=Value("approve"),
        output_field=CharField(),
    )


def _decided_by_person() -> Q:
    return Q(decided_by=DecidedBy.PERSON, status__in=(ActionStatus.APPROVED, ActionStatus.REJECTED))


# --- Human decisions: the calibration store's input ------------------------------------------


def human_decisions(
    *,
    organization: Organization,
    project: Project,
    action: str | None = None,
    rule: str | None = None,
    agent_version: str | None = None,
    since: dt.datetime | None = None,
) -> QuerySet[Action, dict[str, Any]]:
    """Rows of `{"id", "action", "confidence", "matched_rule", "agent_version", "decision",
    "decided_at"}`, newest decision first; `decision` is approve / reject / edited. `rule`
    is the rule's name ("" for escalations no rule matched: the default ladder). A lazy
    queryset: slice or iterate it (`.iterator()` for large reads)."""
    qs = Action.objects.filter(_decided_by_person(), organization=organization, project=project)
    if action is not None:
        qs = qs.filter(action=action)
    if rule is not None:
        qs = qs.filter(matched_rule=rule)
    if agent_version is not None:
        qs = qs.filter(agent_version=agent_version)
    if since is not None:
        qs = qs.filter(decided_at__gte=since)
    return (
        qs.annotate(edited=_edited())
        .annotate(decision=_human_decision())
        .order_by("-decided_at", "-id")
        .values("id", "action", "confidence", "matched_rule", "agent_version", "decision", "decided_at")
    )


# --- Dry run ---------------------------------------------------------------------------------

DEFAULT_REPLAY = 1_000
MAX_REPLAY = 10_000
# Earlier actions loaded for the draft's velocity windows: beyond this the replay would hold
# too much in memory for one request; the caller is told to replay fewer actions.
MAX_HISTORY_ROWS = 200_000
# And bytes: a summed path is read from the database (not whole args, up to 64 KB each), but
# a path may name a large value (a long list, a text); past this much JSON read the replay
# stops the same way. Numbers, the usual case, take a few bytes each.
MAX_HISTORY_BYTES = 32 * 1024 * 1024
DEFAULT_LADDER = "default"


def policy_draft_validate(*, project: Project, data: Any, field: str = "policy") -> policies.Policy:
    """A draft policy checked exactly as saving it would be (policy_version_create): the pure
    validation, and every ladder named must exist ("default" is created on first need). 400
    naming the field under `field` (`policy.rules[1].if.args[0].op`)."""
    prefix = f"{field}." if field else ""
    if not isinstance(data, dict):
        raise ValidationFailed("Send the draft policy as an object.", errors={field or "body": ["Expected an object."]})
    body = {k: v for k, v in data.items() if k != "note"}
    try:
        policy = policies.policy_validate(body)
    except policies.PolicyInvalid as exc:
        where = exc.field if exc.field and exc.field != "body" else ""
        name = f"{prefix}{where}" if where else (field or "body")
        raise ValidationFailed(exc.message, errors={name: [exc.message]}) from exc
    named = [
        (f"rules[{rule.index}].ladder", rule.ladder)
        for rule in policy.rules
        if rule.outcome == Outcome.ESCALATE and rule.ladder
    ]
    named.append(("default_ladder", policy.default_ladder))
    existing = selectors.ladder_names_existing(project=project, names={name for _, name in named})
    for where, name in named:
        if name not in existing and name != DEFAULT_LADDER:
            raise ValidationFailed(
                f"No ladder named '{name}' in this project.",
                errors={f"{prefix}{where}": [f"No ladder named '{name}' in this project; create it first."]},
            )
    return policy


@dataclass(frozen=True)
class ReplaySelection:
    """Which past actions a dry run replays: the newest `last` (1..10,000), optionally within
    [since, until)."""

    last: int = DEFAULT_REPLAY
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _seconds(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _human_of(status: str, decided_by: str, edited: bool) -> str:
    if decided_by == DecidedBy.PERSON:
        if status == ActionStatus.REJECTED:
            return "rejected"
        return "edited" if edited else "approved"
    if status == ActionStatus.EXPIRED:
        return "expired"
    if status == ActionStatus.PENDING:
        return "pending"
    return ""


def _replayed_actions(project: Project, selection: ReplaySelection) -> tuple[list[simulation.PastAction], bool]:
    """The newest `selection.last` actions (by request time, then id), returned oldest first;
    and whether more matched (the range held more than `last`). Read backwards along the
    (project, created_at) index."""
    qs = Action.objects.filter(organization_id=project.organization_id, project=project)
    if selection.since is not None:
        qs = qs.filter(created_at__gte=selection.since)
    if selection.until is not None:
        qs = qs.filter(created_at__lt=selection.until)
    rows = list(
        qs.annotate(edited=_edited())
        .order_by("-created_at", "-id")
        .values_list(
            "id",
            "action",
            "args",
            "confidence",
            "risk_tags",
            "agent_version",
            "end_user_id",
            "created_at",
            "status",
            "decided_by",
            "policy_outcome",
            "matched_rule",
            "edited",
        )[: selection.last + 1]
    )
    more = len(rows) > selection.last
    rows = rows[: selection.last]
    rows.reverse()
    out = [
        simulation.PastAction(
            id=pk,
            action=name,
            args=args if isinstance(args, dict) else {},
            confidence=confidence,
            risk_tags=tuple(tag for tag in (tags or ()) if isinstance(tag, str)),
            agent_version=version,
            end_user_id=user,
            created_at=created.timestamp(),
            status=status,
            policy_outcome=outcome,
            matched_rule=rule,
            human=_human_of(status, decided_by, edited),
        )
        for (
            pk,
            name,
            args,
            confidence,
            tags,
            version,
            user,
            created,
            status,
            decided_by,
            outcome,
            rule,
            edited,
        ) in rows
    ]
    return out, more


def _history(
    project: Project, actions: list[simulation.PastAction], windows: tuple[policies.VelocityWindow, ...]
) -> simulation.History:
    """Every earlier action the draft's windows can reach for the replayed actions, in ONE
    query: the project's actions from the first replayed one minus the longest window to the
    last one, narrowed to the end users / agent versions the windows look up (unless a window
    counts the whole project). Args are loaded only when a window sums a path."""
    span = simulation.history_span(actions, windows)
    if span is None:
        return simulation.History([])
    start, end = (dt.datetime.fromtimestamp(t, tz=dt.UTC) for t in span)
    qs = Action.objects.filter(project=project, created_at__gte=start, created_at__lte=end)
    keys = simulation.window_keys(actions, windows)
    if keys is not None:
        where = Q()
        for by, values in keys.items():
            if values:
                where |= Q(**{f"{by}__in": sorted(values)})
        if not where:
            return simulation.History([])
        qs = qs.filter(where)
    paths = sorted({w.path for w in windows if w.of == "sum" and w.path})
    fields = ["id", "created_at", "action", "end_user_id", "agent_version", "status", "decided_at"]
    reads = [_path_read(path, f"sum_{i}") for i, path in enumerate(paths)]
    qs = qs.order_by().annotate(**{read.alias: read.expression for read in reads})
    out: list[simulation.HistoryRow] = []
    read_bytes = 0
    for row in qs.values_list(*fields, *(read.alias for read in reads))[: MAX_HISTORY_ROWS + 1].iterator(
        chunk_size=2000
    ):
        numbers: dict[str, float] = {}
        for read, raw in zip(reads, row[len(fields) :], strict=True):
            number, size = read.number(raw)
            numbers[read.path] = number
            read_bytes += size
        if len(out) == MAX_HISTORY_ROWS or read_bytes > MAX_HISTORY_BYTES:
            raise ValidationFailed(
                "The draft's velocity windows reach too many earlier actions to replay in one request.",
                errors={
                    "last": [
                        f"More than {MAX_HISTORY_ROWS:,} earlier actions (or {MAX_HISTORY_BYTES // 2**20} MB of "
                        "their summed args) fall in the velocity windows of the actions replayed: replay fewer "
                        "actions or a shorter range."
                    ]
                },
            )
        out.append(
            simulation.HistoryRow(
                id=row[0],
                created_at=row[1].timestamp(),
                action=row[2],
                end_user_id=row[3],
                agent_version=row[4],
                counted_until=simulation.counted_until(status=row[5], decided_at=_seconds(row[6])),
                numbers=numbers if reads else None,
            )
        )
    return simulation.History(out)


# SQLite JSON path labels are double-quoted with no escape: a key holding a quote or a
# backslash is not read in SQL (the rest of the path is looked up in Python from its parent).
_SQLITE_SAFE_KEY = re.compile(r'[^"\\]+')


@dataclass(frozen=True)
class _PathRead:
    """How one summed path is read for the dry run's history: an expression selecting the
    value at the path (or at a prefix of it), and how to turn what it returns into the number
    the sum adds (with its size in bytes, for MAX_HISTORY_BYTES)."""

    path: str
    alias: str
    expression: Any
    rest: tuple[str, ...]  # segments still to look up in Python (policies.arg_lookup)
    kind: str  # "number" (the database returned the number or NULL) or "json" (JSON text)

    def number(self, raw: Any) -> tuple[float, int]:
        if raw is None:
            return 0.0, 0
        if self.kind == "number":
            return float(raw), 8  # a Decimal: float() of a huge one is inf, never an error
        text = raw if isinstance(raw, str) else bytes(raw).decode()
        value = _json_value(text)
        if self.rest:
            found, value = policies.arg_lookup(value, ".".join(self.rest))
            if not found:
                return 0.0, len(text)
        return simulation.number_in(value), len(text)


def _json_value(text: str) -> Any:
    """JSON the database wrote from stored args: orjson, or the stdlib for what orjson refuses
    (integers beyond 64 bits, which it would read as floats)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    if isinstance(value, float) and re.fullmatch(r"-?\d+", text.strip()):
        return json.loads(text)  # an integer beyond 64 bits, exactly
    return value


def _path_read(path: str, alias: str) -> _PathRead:
    """Select only what a sum needs: PostgreSQL `args #> path` (the number, or NULL), SQLite
    `json_extract`. Where the database's path syntax would read a segment differently from
    policies.arg_lookup (PostgreSQL takes "-1" as a list index; SQLite cannot tell a list
    index from a numeric key, nor quote a key holding a quote), the longest prefix it reads
    the same is selected as JSON and the rest looked up here. The first segment is always an
    object key (args is an object), which both read exactly."""
    segments = path.split(".")
    column = f"{connection.ops.quote_name(Action._meta.db_table)}.{connection.ops.quote_name('args')}"
    if connection.vendor == "postgresql":
        if sql.jsonb_path_exact(path):
            return _PathRead(path, alias, sql.arg_number_pg(path), (), "number")
        n = 1
        while n < len(segments) and sql.jsonb_path_exact(".".join(segments[: n + 1])):
            n += 1
        # Only the model's own table and column names are interpolated; the path is a parameter.
        expression = RawSQL(f"({column} #> %s::text[])::text", [segments[:n]], output_field=TextField())  # noqa: S611
        return _PathRead(path, alias, expression, tuple(segments[n:]), "json")
    n = 0
    while (
        sqlite3.sqlite_version_info >= (3, 38)
        and n < len(segments)
        and _SQLITE_SAFE_KEY.fullmatch(segments[n])
        and (n == 0 or not segments[n].isdigit())
    ):
        n += 1
    if n == 0:
        expression = RawSQL(column, [], output_field=TextField())  # noqa: S611 - model names only
        return _PathRead(path, alias, expression, tuple(segments), "json")
    label = "$" + "".join(f'."{segment}"' for segment in segments[:n])
    # `->` (SQLite 3.38) answers JSON text as stored: a text stays quoted, true stays true, and
    # an integer beyond 64 bits keeps its digits (json_extract would answer 1, and a float).
    expression = RawSQL(f"({column} -> %s)", [label], output_field=TextField())  # noqa: S611
    return _PathRead(path, alias, expression, tuple(segments[n:]), "json")


def policy_simulate(
    *, organization: Organization, project: Project, policy: policies.Policy, selection: ReplaySelection
) -> dict[str, Any]:
    """Replay `policy` (a validated draft) over past actions: the report of
    `simulation.simulate`, plus what was replayed. Two queries (three with velocity windows):
    the actions, their `decided` events (inside the first, as EXISTS), and the earlier actions
    the windows reach."""
    if project.organization_id != organization.pk:
        raise ValidationFailed("Unknown project.", errors={"project": ["Not in this organization."]})
    actions, more = _replayed_actions(project, selection)
    history = _history(project, actions, policies.velocity_windows(policy))
    report = simulation.simulate(policy, actions, history)
    current = selectors.policy_version_current(organization=organization, project=project)
    first = actions[0].created_at if actions else None
    last = actions[-1].created_at if actions else None
    return {
        "project": project.slug,
        "current_policy_version": current.version if current is not None else None,
        "selection": {
            "last": selection.last,
            "since": selection.since.isoformat() if selection.since else None,
            "until": selection.until.isoformat() if selection.until else None,
            "more_in_range": more,
            "first_created_at": dt.datetime.fromtimestamp(first, tz=dt.UTC).isoformat() if first else None,
            "last_created_at": dt.datetime.fromtimestamp(last, tz=dt.UTC).isoformat() if last else None,
        },
        "history_rows": len(history),
        "policy": policies.policy_to_json(policy),
        **report,
    }


# --- Confidence envelopes --------------------------------------------------------------------

ENVELOPE_DAYS = 90
MAX_ENVELOPE_SAMPLE = 200_000
MAX_ENVELOPE_ACTIONS = 50


def action_envelopes(
    *,
    organization: Organization,
    project: Project,
    action: str | None = None,
    target: float = envelopes.DEFAULT_TARGET,
    since: dt.datetime | None = None,
    agent_version: str | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Per action type (the `MAX_ENVELOPE_ACTIONS` with the most decisions), from the escalated
    actions people decided since `since` (default: the last 90 days): the reliability table,
    the lowest threshold that keeps the Wilson lower bound of the approval rate at `target`,
    its share of the action type's traffic (actions requested in the same period, whatever
    the policy did) and how many escalations it would have spared, and a suggested rule
    (never applied). Two queries: the decisions, then the traffic counts at each threshold."""
    since = since or (now or timezone.now()) - dt.timedelta(days=ENVELOPE_DAYS)
    decided = human_decisions(
        organization=organization, project=project, action=action, agent_version=agent_version, since=since
    )
    samples: dict[str, tuple[list[float | None], list[bool]]] = defaultdict(lambda: ([], []))
    for name, confidence, decision in decided.values_list("action", "confidence", "decision")[:MAX_ENVELOPE_SAMPLE]:
        confidences, approved = samples[name]
        confidences.append(confidence)
        approved.append(decision == "approve")
    busiest = sorted(samples, key=lambda name: (-len(samples[name][0]), name))[:MAX_ENVELOPE_ACTIONS]
    computed = [envelopes.envelope_compute(name, *samples[name], target=target) for name in busiest]
    traffic = _traffic_at(project=project, computed=computed, since=since, agent_version=agent_version)
    out = []
    for env in computed:
        total, inside, spared = traffic.get(env.action, (0, 0, 0))
        threshold = env.threshold
        out.append(
            {
                "action": env.action,
                "target": env.target,
                "decisions": env.n,
                "since": since.isoformat(),
                "reliability": [b.as_json() for b in env.bins],
                "threshold": threshold.as_json() if threshold is not None else None,
                "not_enough_data": threshold is None,
                "samples_needed": env.samples_needed,
                "traffic": total,
                "traffic_share": (inside / total) if threshold is not None and total else None,
                "escalations_spared": spared if threshold is not None else None,
                "suggested_rule": envelopes.suggested_rule(env.action, threshold, target=target)
                if threshold is not None
                else None,
            }
        )
    return out


def _traffic_at(
    *, project: Project, computed: list[envelopes.Envelope], since: dt.datetime, agent_version: str | None
) -> dict[str, tuple[int, int, int]]:
    """Per action type: actions requested since `since`, those at or above its threshold, and
    those of them the policy escalated. One GROUP BY over (project, created_at)."""
    names = [env.action for env in computed]
    if not names:
        return {}
    inside = [
        When(action=env.action, confidence__gte=env.threshold.confidence_at_least, then=Value(1))
        for env in computed
        if env.threshold is not None
    ]
    qs = Action.objects.filter(project=project, created_at__gte=since, action__in=names)
    if agent_version is not None:
        qs = qs.filter(agent_version=agent_version)
    at_or_above = Case(*inside, default=Value(0), output_field=IntegerField()) if inside else Value(0)
    rows = (
        qs.order_by()
        .values("action")
        .annotate(
            total=Count("id"),
            inside=Sum(at_or_above),
            spared=Sum(Case(When(policy_outcome=Outcome.ESCALATE, then=at_or_above), default=Value(0))),
        )
        .values_list("action", "total", "inside", "spared")
    )
    return {name: (total, inside or 0, spared or 0) for name, total, inside, spared in rows}


# --- Dashboard -------------------------------------------------------------------------------

DASHBOARD_DAYS = 30
DIMENSION_ROWS = 50  # busiest action types / rules / agent versions shown
# Percentiles on SQLite (no percentile_cont) come from the decision times themselves, at most
# this many (the newest); the embedded default serves small tenants.
MAX_DURATION_ROWS = 100_000
# Approval fatigue (DOMAIN.md): someone who approves nearly everything in seconds is not
# reviewing. Flagged: at least RUBBER_STAMP_MIN_DECISIONS votes in the period, at least
# RUBBER_STAMP_APPROVAL_RATE of them approvals, and a median time from the action reaching
# their tier to their vote under RUBBER_STAMP_MEDIAN_SECONDS. Twenty decisions keep one quick
# morning from flagging anyone; 98% leaves room for the one rejection a real reviewer makes
# in fifty; ten seconds is about what reading an action's args and reasoning takes.
RUBBER_STAMP_MIN_DECISIONS = 20
RUBBER_STAMP_APPROVAL_RATE = 0.98
RUBBER_STAMP_MEDIAN_SECONDS = 10.0


class _PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont (linear interpolation, as numpy's default percentile)."""

    function = "percentile_cont"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any):
        if not 0 <= fraction <= 1:
            raise ValueError(fraction)
        super().__init__(expression, **extra)
        self.template = f"%(function)s({float(fraction)!r}) WITHIN GROUP (ORDER BY %(expressions)s)"


class _EpochSeconds(Func):
    """Seconds between two timestamps (PostgreSQL)."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "
    output_field = FloatField()


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _counts() -> dict[str, Any]:
    """The counts every dashboard row has, as conditional aggregates."""
    person = _decided_by_person()
    return {
        "total": Count("id"),
        "auto_approved": Count("id", filter=Q(policy_outcome=Outcome.APPROVE)),
        "auto_rejected": Count("id", filter=Q(policy_outcome=Outcome.REJECT)),
        "escalated": Count("id", filter=Q(policy_outcome=Outcome.ESCALATE)),
        "human_decided": Count("id", filter=person),
        "human_rejected": Count("id", filter=person & Q(status=ActionStatus.REJECTED)),
        "human_edited": Count("id", filter=person & Q(status=ActionStatus.APPROVED, edited=True)),
        "expired": Count("id", filter=Q(status=ActionStatus.EXPIRED)),
        "pending": Count("id", filter=Q(status=ActionStatus.PENDING)),
    }


def _percentile_annotations() -> dict[str, Any]:
    if not _is_postgres():
        return {}
    seconds = _EpochSeconds(F("decided_at"), F("created_at"))
    person = _decided_by_person()
    return {
        "decision_p50": _PercentileCont(seconds, 0.5, filter=person),
        "decision_p90": _PercentileCont(seconds, 0.9, filter=person),
    }


@dataclass(frozen=True)
class _Period:
    start: dt.datetime
    end: dt.datetime
    zone: ZoneInfo
    days: list[dt.date]


def _period(project: Project, days: int, now: dt.datetime | None) -> _Period:
    try:
        zone = ZoneInfo(project.timezone or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    now = now or timezone.now()
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    return _Period(start=start, end=now, zone=zone, days=[first + dt.timedelta(days=i) for i in range(days)])


def _row(values: dict[str, Any]) -> dict[str, Any]:
    """Rates from one row's counts (None where the denominator is 0)."""
    total, decided = values["total"], values["human_decided"]
    overrides = values["human_rejected"] + values["human_edited"]
    return {
        **values,
        "auto_approval_rate": values["auto_approved"] / total if total else None,
        "escalation_rate": values["escalated"] / total if total else None,
        "override_rate": overrides / decided if decided else None,
        "human_overrides": overrides,
    }


def _grouped(qs: QuerySet[Action], key: Any, *, limit: int | None) -> list[dict[str, Any]]:
    rows = (
        qs.annotate(edited=_edited(), key=key)
        .order_by()
        .values("key")
        .annotate(**_counts(), **_percentile_annotations())
        .order_by("-total", "key")
    )
    if limit is not None:
        rows = rows[:limit]
    return [dict(row) for row in rows]


def _durations_fill(qs: QuerySet[Action], groups: dict[str, tuple[Any, list[dict[str, Any]]]]) -> None:
    """SQLite: the median and p90 of decision times per row of each grouping, from the newest
    MAX_DURATION_ROWS human decisions of the period (one query for every grouping)."""
    keys = {name: key for name, (key, _rows) in groups.items()}
    rows = (
        qs.filter(_decided_by_person())
        .annotate(**{f"k_{name}": key for name, key in keys.items()})
        .order_by("-decided_at")
        .values_list("created_at", "decided_at", *[f"k_{name}" for name in keys])[:MAX_DURATION_ROWS]
    )
    seconds: dict[str, dict[Any, list[float]]] = {name: defaultdict(list) for name in keys}
    for created, decided, *group_keys in rows:
        took = (decided - created).total_seconds()
        for name, value in zip(keys, group_keys, strict=True):
            seconds[name][value].append(took)
    for name, (_key, out) in groups.items():
        for row in out:
            values = seconds[name].get(row["key"])
            p50, p90 = np.percentile(values, [50, 90]) if values else (None, None)
            row["decision_p50"] = float(p50) if p50 is not None else None
            row["decision_p90"] = float(p90) if p90 is not None else None


def dashboard_figures(
    *, organization: Organization, project: Project, days: int = DASHBOARD_DAYS, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The last `days` days of the project's actions (by the day they were requested, in the
    project's time zone): per day, per action type, per rule and per agent version, counts
    (auto-approved, auto-rejected, escalated, decided by people, rejected, edited, expired,
    pending) with the auto-approval, escalation and override rates and the time to a person's
    decision (median, p90, from the request). Four GROUP BY queries (five on SQLite, whose
    percentiles are computed from the decision times)."""
    period = _period(project, days, now)
    qs = Action.objects.filter(
        organization=organization, project=project, created_at__gte=period.start, created_at__lte=period.end
    )
    groups: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
    for name, key, limit in (
        ("days", TruncDate("created_at", tzinfo=period.zone), None),
        ("actions", F("action"), DIMENSION_ROWS),
        ("rules", F("matched_rule"), DIMENSION_ROWS),
        ("versions", F("agent_version"), DIMENSION_ROWS),
    ):
        groups[name] = (key, _grouped(qs, key, limit=limit))
    if not _is_postgres():
        _durations_fill(qs, groups)
    by_day = {row["key"]: row for row in groups["days"][1]}
    empty = dict.fromkeys(
        (*_counts(), "decision_p50", "decision_p90"),
        0,
    )
    empty["decision_p50"] = empty["decision_p90"] = None
    days_out = [_row({**empty, **by_day.get(day, {}), "key": day}) for day in period.days]
    totals = dict.fromkeys(_counts(), 0)
    for row in days_out:
        for name in totals:
            totals[name] += row[name]
    return {
        "project": project.slug,
        "days": days,
        "start": period.start.isoformat(),
        "timezone": str(period.zone),
        "totals": _row({**totals, "key": None}),
        "by_day": days_out,
        "by_action": [_row(r) for r in groups["actions"][1]],
        "by_rule": [_row(r) for r in groups["rules"][1]],
        "by_agent_version": [_row(r) for r in groups["versions"][1]],
    }


def rubber_stamp_approvers(
    *, organization: Organization, project: Project, days: int = DASHBOARD_DAYS, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Approvers who, over the last `days` days, cast at least RUBBER_STAMP_MIN_DECISIONS votes
    on the project's actions, approved at least RUBBER_STAMP_APPROVAL_RATE of them, with a
    median under RUBBER_STAMP_MEDIAN_SECONDS from the action reaching their tier (its
    `tier_entered` event) to their vote. Busiest first. One query (GROUP BY person) on
    PostgreSQL; on SQLite the votes are read and the medians computed here."""
    period = _period(project, days, now)
    entered = Subquery(
        ActionEvent.objects.filter(
            action=OuterRef("action"), kind="tier_entered", created_at__lte=OuterRef("created_at")
        )
        .order_by("-id")
        .values("created_at")[:1]
    )
    votes = Vote.objects.filter(
        organization=organization, action__project=project, created_at__gte=period.start, created_at__lte=period.end
    ).annotate(entered=entered)
    people: list[tuple[str, int, int, float | None]] = []
    if _is_postgres():
        rows = (
            votes.order_by()
            .values("user__username")
            .annotate(
                n=Count("id"),
                approved=Count("id", filter=Q(decision="approve")),
                median=_PercentileCont(_EpochSeconds(F("created_at"), F("entered")), 0.5),
            )
            .filter(n__gte=RUBBER_STAMP_MIN_DECISIONS)
            .values_list("user__username", "n", "approved", "median")
        )
        people = [(name, n, approved, median) for name, n, approved, median in rows]
    else:
        taken: dict[str, list[float]] = defaultdict(list)
        approvals: dict[str, int] = defaultdict(int)
        for name, decision, created, started in votes.values_list(
            "user__username", "decision", "created_at", "entered"
        ).iterator(chunk_size=2000):
            taken[name].append((created - started).total_seconds() if started is not None else math.nan)
            approvals[name] += decision == "approve"
        for name, times in taken.items():
            if len(times) >= RUBBER_STAMP_MIN_DECISIONS:
                known = [t for t in times if not math.isnan(t)]
                people.append((name, len(times), approvals[name], float(np.median(known)) if known else None))
    flagged = [
        {
            "username": name,
            "decisions": n,
            "approved": approved,
            "approval_rate": approved / n,
            "median_seconds": median,
        }
        for name, n, approved, median in people
        if approved / n >= RUBBER_STAMP_APPROVAL_RATE and median is not None and median < RUBBER_STAMP_MEDIAN_SECONDS
    ]
    return sorted(flagged, key=lambda row: (-row["decisions"], row["username"]))
