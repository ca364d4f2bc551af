"""The approver's pages: the inbox (`/escalations/`) and an action's page
(`/escalations/actions/<id>/`) with its claim and decision forms.

Thin, like the API: every post calls the service the API calls (`action_decide`,
`action_claim`, `action_release`), so the browser and `POST /api/v1/actions/{id}/decision`
cannot disagree on who may decide, four-eyes or edits. A refused post is not a 500: input
errors (a reject without a comment, args that are not a JSON object) come back inline on the
form, with what was typed; a 403 (not at your tier) or 409 (decided meanwhile, by whom) comes
back as a message on the page, answered with that status. A post that worked redirects (303)
to the action's page, so a reload never decides twice.

Everything an agent or end user wrote (action name, args, reasoning, risk tags, end user id,
the transcript) is rendered escaped: args and transcript through reviewapp.rendering (bounded
in time and size), the rest through autoescape. The inbox filters in the query string travel
with every link and form, so `j`/`k` on an action's page walk the same filtered order.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from escalations import deciding, policies, selectors_action_page, selectors_inbox, services
from escalations.context_processors import request_inbox_summary
from escalations.models import Action, ActionStatus, DecidedBy
from escalations.selectors_inbox import InboxFilters
from escalations.services import decisions
from reviewapp import rendering, validation
from reviewapp.decorators import member_required
from reviewapp.errors import ApplicationError, NotFound, ValidationFailed
from reviewapp.principal import Principal
from reviewapp.transcript import transcript_turns

# The name and version columns hold 100 characters; a risk tag is held to the same.
FILTER_TEXT_MAX = 100
# A ladder has at most 10 tiers (policies.py), indexed from 0.
TIER_MAX = 9
# What an inbox row shows of the args: one line's worth. The action's page has all of them.
ARGS_PREVIEW_CHARS = 160
# The edit box holds the args pretty-printed: twice the args' own bound leaves room for the
# indentation; the service checks the parsed args against ARGS_MAX_BYTES itself.
ARGS_TEXT_MAX = 4 * decisions.ARGS_MAX_BYTES
# An explanation's observed value or an event's data, as one line of JSON text (the policy
# module already cuts long observed values to 500 characters).
DETAIL_CHARS = 600
RISK_TAGS_SHOWN = 50
EXPLANATION_SHOWN = 50


# --- who and what ------------------------------------------------------------------------------


def _principal(request: HttpRequest) -> Principal:
    membership = request.membership  # type: ignore[attr-defined]
    return Principal(organization=membership.organization, role=membership.role, user=request.user)


class InboxFilterForm(forms.Form):
    """The inbox's filters, from the query string. Exact matches; empty means any."""

    action = forms.CharField(required=False, max_length=FILTER_TEXT_MAX)
    tier = forms.CharField(required=False, max_length=2)
    risk_tag = forms.CharField(required=False, max_length=FILTER_TEXT_MAX, label="Risk tag")
    agent_version = forms.CharField(required=False, max_length=FILTER_TEXT_MAX, label="Agent version")

    def _text(self, name: str) -> str | None:
        value = self.cleaned_data.get(name) or ""
        try:
            validation.check_text(value, field=name)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from exc
        return value or None

    def clean_action(self) -> str | None:
        return self._text("action")

    def clean_risk_tag(self) -> str | None:
        return self._text("risk_tag")

    def clean_agent_version(self) -> str | None:
        return self._text("agent_version")

    def clean_tier(self) -> int | None:
        try:
            # Shown from 1 ("Tier 1"), sent as stored: from 0, like the API.
            return validation.parse_int_or_none(self.cleaned_data.get("tier"), field="tier", min=0, max=TIER_MAX)
        except ValidationFailed as exc:
            raise forms.ValidationError(f"Pick a tier from the list ({exc.message})") from exc


def _filters_of(query: QueryDict) -> tuple[InboxFilters, InboxFilterForm, str]:
    """The valid filters of a query string (an invalid one is dropped, and the form says why),
    the form, and the valid filters as a query string for links."""
    form = InboxFilterForm(query or None)
    form.is_valid()
    cleaned = getattr(form, "cleaned_data", {})
    values = {name: cleaned.get(name) for name in form.fields if name not in form.errors}
    filters = InboxFilters(**{name: value for name, value in values.items() if value is not None})
    query_string = urlencode({name: value for name, value in values.items() if value is not None})
    return filters, form, query_string


def _with_query(url: str, query_string: str) -> str:
    return f"{url}?{query_string}" if query_string else url


# --- time ----------------------------------------------------------------------------------------


def countdown_text(seconds: float) -> str:
    """'in 14m 05s', 'overdue 2h 03m', 'in 3d 4h': what the countdown shows before (or without)
    static/escalations/approvals.js, which ticks it with the same wording."""
    whole = int(abs(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        span = f"{days}d {hours}h"
    elif hours:
        span = f"{hours}h {minutes:02d}m"
    else:
        span = f"{minutes}m {secs:02d}s"
    return f"overdue {span}" if seconds < 0 else f"in {span}"


@dataclass(frozen=True)
class Due:
    at: dt.datetime
    iso: str
    text: str
    overdue: bool


def _due(moment: dt.datetime | None, now: dt.datetime) -> Due | None:
    if moment is None:
        return None
    seconds = (moment - now).total_seconds()
    return Due(at=moment, iso=moment.isoformat(), text=countdown_text(seconds), overdue=seconds < 0)


def _duration(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} d"
    if seconds % 3_600 == 0:
        return f"{seconds // 3_600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


# --- ladders -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierView:
    number: int  # from 1, as people count
    who: str
    timeout: str
    approvals_required: int
    current: bool


def _who(tier: Any) -> str:
    if tier.users:
        return ", ".join(tier.users)
    return f"any {tier.role}" + (" (and admins)" if tier.role != deciding.ADMIN else "")


def _tier_views(action: Action) -> list[TierView]:
    pending = action.status == ActionStatus.PENDING
    return [
        TierView(
            number=index + 1,
            who=_who(tier),
            timeout=_duration(tier.timeout_seconds),
            approvals_required=tier.approvals_required,
            current=pending and index == action.tier,
        )
        for index, tier in enumerate(decisions.ladder_tiers(action.ladder))
    ]


def _tier_label(action: Action, *, short: bool = False) -> str:
    """'Tier 1/3 · any approver (and admins)' on an action's page; '1/3 · approver' in the
    inbox's narrow column (named users: the first three; 'x2' when two must approve)."""
    tiers = decisions.ladder_tiers(action.ladder)
    if action.tier is None:
        return "—"
    if not 0 <= action.tier < len(tiers):
        return f"Tier {action.tier + 1} (not on its ladder)"
    tier = tiers[action.tier]
    if short:
        who = ", ".join(tier.users[:3]) + (f" +{len(tier.users) - 3}" if len(tier.users) > 3 else "")
        label = f"{action.tier + 1}/{len(tiers)} · {who or tier.role}"
    else:
        label = f"Tier {action.tier + 1}/{len(tiers)} · {_who(tier)}"
    # The action page says "1 of 2 approvals" beside the label; the inbox's column only "x2".
    if short and tier.approvals_required > 1:
        label += f" \u00d7{tier.approvals_required}"
    return label


# --- the inbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxRow:
    action: Action
    url: str
    args_preview: str
    tier_label: str
    due: Due | None
    claimed_by: str
    claimed_by_me: bool


def _args_preview(args: Any) -> str:
    # json_text survives any depth; the slice keeps a 64 KB args value off the inbox page.
    text = rendering.json_text(args)
    return text if len(text) <= ARGS_PREVIEW_CHARS else text[: ARGS_PREVIEW_CHARS - 1] + "…"


@member_required("actions.decide")
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """The actions the person may decide now, soonest due first, with the filters, how many wait
    at each tier, and who claimed what. Four queries past the session: the summary (shared with
    the navigation bar), the action names for the filter, the rows, and nothing per row."""
    principal = _principal(request)
    filters, form, query_string = _filters_of(request.GET)
    now = timezone.now()
    summary = request_inbox_summary(request, principal)
    actions = selectors_inbox.inbox_for(principal, filters, summary=summary)
    user_id = request.user.pk
    rows = [
        InboxRow(
            action=action,
            url=_with_query(reverse("escalations:action-detail", args=[action.pk]), query_string),
            args_preview=_args_preview(action.args),
            tier_label=_tier_label(action, short=True),
            due=_due(action.due_at, now),
            claimed_by=action.claimed_by.get_username() if action.claimed_by else "",
            claimed_by_me=action.claimed_by_id is not None and action.claimed_by_id == user_id,
        )
        for action in actions
    ]
    action_counts = selectors_inbox.inbox_action_counts(principal, summary=summary)
    context = {
        "form": form,
        "filters": filters,
        "rows": rows,
        # A filter on a name or tier with nothing waiting still shows what it filters on.
        "action_missing": filters.action is not None and all(name != filters.action for name, _ in action_counts),
        "tier_missing": filters.tier is not None and filters.tier not in summary.by_tier,
        "action_counts": action_counts,
        "limit": selectors_inbox.INBOX_LIMIT,
        "summary": summary,
        "tier_counts": [(tier, tier + 1, n) for tier, n in summary.by_tier.items()],
        "now_iso": now.isoformat(),
    }
    return render(request, "escalations/inbox.html", context, status=400 if form.errors else 200)


# --- an action's page ------------------------------------------------------------------------------


@dataclass
class DecisionInput:
    """What the person typed, kept when a post comes back refused, and the inline errors."""

    comment: str = ""
    reject_comment: str = ""
    args_text: str | None = None
    open_form: str = ""  # "reject" or "edit": the form to show open with its errors
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExplanationRow:
    condition: str
    observed: str
    note: str


@dataclass(frozen=True)
class VoteRow:
    username: str
    decision: str
    tier_number: int
    edited: bool
    changes: list[dict[str, Any]]
    comment: str
    created_at: dt.datetime


@dataclass(frozen=True)
class EventRow:
    kind: str
    actor: str
    created_at: dt.datetime
    detail: str


@dataclass(frozen=True)
class EarlierRow:
    action: Action
    args_preview: str


def _one_line(value: Any) -> str:
    """A JSON value as one line of JSON text, cut to DETAIL_CHARS: a string keeps its quotes, so
    "450" and 450 read differently (they are different args)."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else rendering.json_text(value)
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _explanation(action: Action) -> list[ExplanationRow]:
    rows = []
    entries = action.policy_explanation if isinstance(action.policy_explanation, list) else []
    for entry in entries[:EXPLANATION_SHOWN]:
        if not isinstance(entry, dict):
            continue
        rows.append(
            ExplanationRow(
                condition=str(entry.get("condition", ""))[:DETAIL_CHARS],
                observed=_one_line(entry.get("observed")),
                note=str(entry.get("note") or "")[:DETAIL_CHARS],
            )
        )
    return rows


def _change_rows(changes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """An args diff for a table: each side as one line of JSON text, or empty when absent."""
    return [
        {
            "path": str(change.get("path", "")),
            "from": _one_line(change["from"]) if "from" in change else "",
            "to": _one_line(change["to"]) if "to" in change else "",
            "added": "from" not in change,
            "removed": "to" not in change,
        }
        for change in changes
    ]


def _event_actor(event: Any) -> str:
    if event.actor_user is not None:
        return event.actor_user.get_username()
    if event.actor_api_key is not None:
        return f"key {event.actor_api_key.prefix}…"
    return "system"


def _decided_by_label(action: Action) -> str:
    if action.decided_by == DecidedBy.PERSON:
        return action.decided_by_user.get_username() if action.decided_by_user else "a person (account deleted)"
    if action.decided_by == DecidedBy.POLICY:
        return "the policy" + (f" (rule '{action.matched_rule}')" if action.matched_rule else "")
    if action.decided_by == DecidedBy.TIMEOUT:
        return "timeout (nobody decided before the last tier ran out)"
    return action.decided_by or "—"


def _table_args(action: Action, votes: list[Any]) -> dict[str, Any]:
    """The args an approval without edits approves: those of the latest approval at the current
    tier (an edit awaiting its second pair of eyes), else the args as requested. The rule of
    services.decisions, read from the votes the page loaded anyway."""
    for vote in reversed(votes):
        if vote.decision == "approve" and vote.tier == action.tier and isinstance(vote.args, dict):
            return vote.args
    return action.args if isinstance(action.args, dict) else {}


def _read_only_reason(principal: Principal, action: Action, votes: list[Any]) -> str:
    """Why this person cannot decide this pending action now (empty: they can)."""
    if not principal.can("actions.decide"):
        return f"Your role ({principal.role}) may see actions but not decide them."
    mine = next((v for v in votes if v.user_id == principal.user.pk and v.tier == action.tier), None)
    if mine is not None:
        return f"You already {mine.decision}d this action (at tier {mine.tier + 1}); each person decides once per tier."
    tier = decisions.current_tier(action)
    if tier is None:
        return "Its ladder has no such tier: the ladder's timeout outcome comes next."
    if not decisions.person_may_decide(principal=principal, tier=tier):
        return f"Tier {action.tier + 1} is for {_who(tier)}; you may not decide at it."
    return ""


def _claim_state(action: Action, *, user_id: Any, now: dt.datetime) -> dict[str, Any] | None:
    if action.claimed_by_id is None:
        return None
    return {
        "holder": action.claimed_by.get_username() if action.claimed_by else "someone",
        "at": action.claimed_at,
        "mine": action.claimed_by_id == user_id,
        "stale": decisions.claim_is_stale(action, now=now),
    }


def _action_page(
    request: HttpRequest, action_id: int, *, posted: DecisionInput | None = None, status: int = 200
) -> HttpResponse:
    principal = _principal(request)
    try:
        action = selectors_action_page.action_for_page(organization=principal.organization, action_id=action_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    filters, _, query_string = _filters_of(request.GET)
    now = timezone.now()
    votes = selectors_action_page.action_votes(action=action)
    trail = selectors_action_page.action_trail(action=action)
    pending = action.status == ActionStatus.PENDING
    reason = _read_only_reason(principal, action, votes) if pending else ""
    can_decide = pending and not reason
    posted = posted or DecisionInput()
    table_args = _table_args(action, votes) if pending else {}

    previous_id = next_id = None
    if principal.can("actions.decide"):
        summary = request_inbox_summary(request, principal)
        previous_id, next_id = selectors_inbox.inbox_neighbours(
            principal, action=action, filters=filters, summary=summary
        )

    def detail_url(pk: int | None) -> str | None:
        return _with_query(reverse("escalations:action-detail", args=[pk]), query_string) if pk else None

    tier = decisions.current_tier(action) if pending else None
    approvals_here = (
        sum(1 for v in votes if v.decision == "approve" and v.tier == action.tier) if pending and tier else 0
    )
    context = {
        "action": action,
        "pending": pending,
        "can_decide": can_decide,
        "read_only_reason": reason,
        "args_html": rendering.json_html(action.args),
        "final_args_html": rendering.json_html(action.final_args) if action.final_args is not None else None,
        "final_changes": _change_rows(deciding.args_diff(action.args, action.final_args))
        if isinstance(action.args, dict) and isinstance(action.final_args, dict)
        else [],
        "reasoning_html": rendering.text_html(action.reasoning) if action.reasoning else None,
        "risk_tags": [str(tag) for tag in (action.risk_tags or [])[:RISK_TAGS_SHOWN]]
        if isinstance(action.risk_tags, list)
        else [],
        "explanation": _explanation(action),
        "tiers": _tier_views(action),
        "tier_label": _tier_label(action) if pending else "",
        "approvals_here": approvals_here,
        "approvals_required": tier.approvals_required if tier else 0,
        "due": _due(action.due_at, now) if pending else None,
        "claim": _claim_state(action, user_id=request.user.pk, now=now) if pending else None,
        "decided_by_label": _decided_by_label(action),
        "votes": [
            VoteRow(
                username=v.user.get_username(),
                decision=v.decision,
                tier_number=v.tier + 1,
                edited=v.edited,
                changes=_change_rows(deciding.args_diff(action.args, v.args))
                # While pending, each edit awaiting its approvals; once decided, the decision
                # shows the net change instead.
                if pending and v.edited and isinstance(action.args, dict) and isinstance(v.args, dict)
                else [],
                comment=v.comment,
                created_at=v.created_at,
            )
            for v in votes
        ],
        "trail": [
            EventRow(kind=e.kind, actor=_event_actor(e), created_at=e.created_at, detail=_one_line(e.data))
            for e in trail.events
        ],
        "trail_truncated": trail.truncated,
        "turns": transcript_turns(action.conversation.messages) if action.conversation is not None else None,
        # The conversation's own page needs conversations.read, which approvers lack: they read
        # the transcript here, and a link would only lead them to a 403.
        "conversation_link": action.conversation is not None and principal.can("conversations.read"),
        "earlier": [
            EarlierRow(action=e, args_preview=_args_preview(e.args))
            for e in selectors_action_page.actions_earlier_for_end_user(action=action)
        ],
        "posted": posted,
        "args_text": posted.args_text if posted.args_text is not None else rendering.pretty_json(table_args),
        # What the approve and edit forms send back: the approval is refused (409) if the
        # args on the table changed after this page was rendered.
        "table_digest": policies.args_digest(action.action, table_args) if can_decide else "",
        "query_string": query_string,
        "inbox_url": _with_query(reverse("escalations:inbox"), query_string),
        "previous_url": detail_url(previous_id),
        "next_url": detail_url(next_id),
        "now_iso": now.isoformat(),
    }
    return render(request, "escalations/action_detail.html", context, status=status)


@member_required("actions.read")
@require_GET
def action_detail(request: HttpRequest, action_id: int) -> HttpResponse:
    """An action with everything a decision needs. Read-only, with the reason, for a person who
    cannot decide it now (another tier, voted already, a role that only reads)."""
    return _action_page(request, action_id)


def _back(request: HttpRequest, action_id: int) -> HttpResponse:
    url = _with_query(reverse("escalations:action-detail", args=[action_id]), _filters_of(request.GET)[2])
    response = redirect(url)
    response.status_code = 303
    return response


def _refused(request: HttpRequest, action_id: int, exc: ApplicationError, posted: DecisionInput) -> HttpResponse:
    """A service refused the post: 404 stays a 404; input errors come back inline; anything
    else (403 not at your tier, 409 decided meanwhile, naming by whom) as a message."""
    if isinstance(exc, NotFound):
        raise Http404(exc.message) from exc
    if exc.status_code == 400 and exc.errors:
        posted.errors = {key: [str(m) for m in value] for key, value in exc.errors.items()}
    else:
        messages.error(request, exc.message)
        posted.open_form = ""
    return _action_page(request, action_id, posted=posted, status=exc.status_code)


def _parse_args_text(text: str) -> Any:
    """The edit box's JSON, parsed with the bounds of every JSON input; errors as the form
    shows them."""
    if len(text) > ARGS_TEXT_MAX:
        raise ValidationFailed("Args too large.", errors={"args": [f"At most {ARGS_TEXT_MAX:,} characters."]})
    try:
        return validation.json_loads(text, max_depth=decisions.ARGS_MAX_DEPTH)
    except ValidationFailed as exc:
        details = [str(m) for messages_ in exc.errors.values() for m in messages_] or [exc.message]
        raise ValidationFailed("Not valid JSON.", errors={"args": [f"Not valid JSON: {d}" for d in details]}) from exc


@member_required("actions.decide")
@require_POST
def action_decide(request: HttpRequest, action_id: int) -> HttpResponse:
    """Approve, reject (a comment required) or edit the args and approve: the edit form sends
    `args`, the JSON to approve instead. Same service as the API."""
    decision = request.POST.get("decision", "")
    comment = request.POST.get("comment", "")
    args_text = request.POST.get("args")
    # The forms always send it; a post without it is refused (400) rather than approving
    # whatever the table holds now.
    expected_digest = request.POST.get("expected_digest", "")
    edit = decision == "approve" and args_text is not None
    posted = DecisionInput(
        comment=comment if decision == "approve" else "",
        reject_comment=comment if decision == "reject" else "",
        args_text=args_text if edit else None,
        open_form="edit" if edit else ("reject" if decision == "reject" else ""),
    )
    try:
        args = _parse_args_text(args_text) if edit else None
        action = services.action_decide(
            principal=_principal(request),
            action_id=action_id,
            decision=decision,
            args=args,
            comment=comment,
            expected_digest=expected_digest,
        )
    except ApplicationError as exc:
        return _refused(request, action_id, exc, posted)
    if action.status == ActionStatus.PENDING:
        tier = decisions.current_tier(action)
        needed = tier.approvals_required if tier else 0
        messages.success(request, f"Your approval is recorded; this tier needs {needed} approvals of the same args.")
    elif action.status == ActionStatus.APPROVED:
        edited = action.final_args != action.args
        messages.success(request, "Approved with your edited args." if edited else "Approved.")
    else:
        messages.success(request, "Rejected; the agent gets your comment.")
    return _back(request, action_id)


@member_required("actions.decide")
@require_POST
def action_claim(request: HttpRequest, action_id: int) -> HttpResponse:
    """Claim the action (colleagues see it is taken), or give the claim back (`release=1`)."""
    release = request.POST.get("release") == "1"
    service = services.action_release if release else services.action_claim
    try:
        service(principal=_principal(request), action_id=action_id)
    except ApplicationError as exc:
        return _refused(request, action_id, exc, DecisionInput())
    messages.success(request, "Claim released." if release else "Claimed: colleagues see you have it.")
    return _back(request, action_id)
