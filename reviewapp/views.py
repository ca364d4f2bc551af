"""Browser pages for the core. They call the same selectors and services as the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import password_validation
from django.contrib.auth.decorators import login_required
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp import hooks, selectors, services, textsearch, validation
from reviewapp.context_processors import SYSTEM_PROMPT_OPEN
from reviewapp.decorators import member_required
from reviewapp.errors import NotFound, ValidationFailed
from reviewapp.middleware import SESSION_KEY
from reviewapp.models import Role, SignalKind
from reviewapp.principal import CAPABILITIES
from reviewapp.transcript import first_user_text, transcript_turns


@member_required()
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    context: dict[str, Any] = {"role": membership.role}
    if "conversations.read" in CAPABILITIES.get(membership.role, frozenset()):
        context["stats"] = selectors.organization_stats(organization=membership.organization)
        recent = selectors.conversation_list(organization=membership.organization)[:10]
        context["recent"] = [(c, first_user_text(c.messages)) for c in recent]
        context["projects"] = selectors.project_list(organization=membership.organization)
    if membership.role == "admin":
        context["members"] = selectors.membership_list(organization=membership.organization)
        context["events"] = selectors.audit_event_list(organization=membership.organization, limit=10)
    context["memberships"] = selectors.membership_list_for_user(user=request.user)
    return render(request, "reviewapp/home.html", context)


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("organization", "")
    for membership in selectors.membership_list_for_user(user=request.user):
        if membership.organization.slug == slug:
            request.session[SESSION_KEY] = membership.organization_id
            return redirect("home")
    raise Http404("No such organization.")


@member_required()
@require_POST
def system_prompt_preference(request: HttpRequest) -> HttpResponse:
    """`open=1` or `open=0`, sent by static/reviewapp/transcript.js when the person opens or
    closes a system prompt."""
    request.session[SYSTEM_PROMPT_OPEN] = request.POST.get("open") == "1"
    return HttpResponse(status=204)


_ANY_YES_NO = [("", "any"), ("yes", "yes"), ("no", "no")]


class ConversationFilterForm(forms.Form):
    # Django's CharField refuses NUL characters; the length bound matches the API's.
    q = forms.CharField(required=False, max_length=textsearch.MAX_QUERY_CHARS, label="search")
    external_id = forms.CharField(required=False, max_length=255, label="external id")
    asked_for_human = forms.ChoiceField(required=False, choices=_ANY_YES_NO, label="asked for a human")
    signal = forms.ChoiceField(required=False, choices=[("", "any signal"), *SignalKind.choices])
    labeled = forms.ChoiceField(required=False, choices=_ANY_YES_NO)
    queued = forms.ChoiceField(required=False, choices=_ANY_YES_NO, label="in a queue")
    project = forms.CharField(required=False)
    agent_version = forms.CharField(required=False)
    tag = forms.CharField(required=False)
    feedback_rating = forms.ChoiceField(
        required=False, choices=[("", "any feedback"), ("down", "thumbs down"), ("up", "thumbs up")]
    )
    rephrased = forms.BooleanField(required=False, label="user rephrased")
    judge = forms.CharField(required=False)
    criterion = forms.CharField(required=False)
    score_max = forms.FloatField(required=False, label="score ≤")
    occurred_after = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before_id = forms.IntegerField(
        required=False, min_value=validation.ID_MIN, max_value=validation.ID_MAX, widget=forms.HiddenInput
    )


PAGE_SIZE = 50


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@member_required("conversations.read")
@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    form = ConversationFilterForm(request.GET or None)
    # An invalid field (a search over the length limit) is shown beside the form and the list
    # stays empty, rather than silently listing everything.
    valid = form.is_valid() if form.is_bound else True
    values = form.cleaned_data if form.is_bound and valid else {}
    clauses = textsearch.parse(values.get("q") or "")
    project = None
    if values.get("project"):
        project = selectors.project_get_by_slug(organization=organization, slug=values["project"])
    after = values.get("occurred_after")
    filters = selectors.ConversationFilters(
        project=project,
        agent_version=values.get("agent_version") or None,
        tag=values.get("tag") or None,
        feedback_rating=values.get("feedback_rating") or None,
        user_rephrased=True if values.get("rephrased") else None,
        judge=values.get("judge") or None,
        criterion=values.get("criterion") or None,
        score_max=values.get("score_max"),
        occurred_after=dt.datetime.combine(after, dt.time.min, tzinfo=dt.UTC) if after else None,
        q=values.get("q") or None,
        external_id=values.get("external_id") or None,
        signal=values.get("signal") or None,
        asked_for_human=_yes_no(values.get("asked_for_human")),
        labeled=_yes_no(values.get("labeled")),
        queued=_yes_no(values.get("queued")),
    )
    qs = selectors.conversation_list(organization=organization, filters=filters)
    if values.get("before_id"):
        qs = qs.filter(pk__lt=values["before_id"])
    rows = list(qs[: PAGE_SIZE + 1]) if valid else []
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_query = None
    if has_more:
        params = request.GET.copy()
        params["before_id"] = str(rows[-1].pk)
        next_query = params.urlencode()
    context = {
        "form": form,
        "searching": bool(clauses),
        # A search shows where each result matched (a textsearch.Snippet), else the opening.
        "rows": [
            (c, (clauses and textsearch.snippet(c.messages, clauses)) or first_user_text(c.messages)) for c in rows
        ],
        "next_query": next_query,
        "projects": selectors.project_list(organization=organization),
    }
    template = "reviewapp/_conversation_rows.html" if request.htmx else "reviewapp/conversation_list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@member_required("conversations.read")
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: int) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    try:
        conversation = selectors.conversation_get(organization=organization, conversation_id=conversation_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    membership = request.membership  # type: ignore[attr-defined]
    panels = hooks.conversation_panels(organization=organization, conversation=conversation, role=membership.role)
    return render(
        request,
        "reviewapp/conversation_detail.html",
        {"conversation": conversation, "turns": transcript_turns(conversation.messages), "panels": panels},
    )


class ApiKeyCreateForm(forms.Form):
    project = forms.ChoiceField()
    name = forms.CharField(max_length=100)


@member_required("api_keys.manage")
@require_http_methods(["GET", "POST"])
def api_key_list(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    projects = list(selectors.project_list(organization=organization))
    form = ApiKeyCreateForm(request.POST or None)
    form.fields["project"].choices = [(p.slug, p.name) for p in projects]
    issued = None
    if request.method == "POST" and form.is_valid():
        project = next(p for p in projects if p.slug == form.cleaned_data["project"])
        issued = services.api_key_create(project=project, name=form.cleaned_data["name"], created_by=request.user)
        form = ApiKeyCreateForm()
        form.fields["project"].choices = [(p.slug, p.name) for p in projects]
    keys = selectors.api_key_list(organization=organization)
    return render(request, "reviewapp/api_keys.html", {"form": form, "keys": keys, "issued": issued})


@member_required("api_keys.manage")
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    try:
        key = selectors.api_key_get(organization=organization, key_id=key_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    services.api_key_revoke(key=key, actor=request.user)
    return redirect("api-key-list")


# Scripts that sign in on every run pile up tokens (for PERSONAL_TOKEN_TTL_DAYS); the page shows
# the newest ones.
TOKEN_PAGE_ROWS = 200


@member_required()
@require_GET
def personal_token_list(request: HttpRequest) -> HttpResponse:
    """Your own tokens (every organization), and for an admin the organization's."""
    membership = request.membership  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "own": selectors.personal_token_list_for_user(user=request.user)[:TOKEN_PAGE_ROWS],
        "rows": TOKEN_PAGE_ROWS,
    }
    if "tokens.manage" in CAPABILITIES.get(membership.role, frozenset()):
        context["organization_tokens"] = selectors.personal_token_list(organization=membership.organization)[
            :TOKEN_PAGE_ROWS
        ]
    return render(request, "reviewapp/tokens.html", context)


@member_required()
@require_POST
def personal_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of your own tokens, or as an admin any token of the current organization."""
    membership = request.membership  # type: ignore[attr-defined]
    try:
        token = selectors.personal_token_get_for_user(user=request.user, token_id=token_id)
    except NotFound:
        if "tokens.manage" not in CAPABILITIES.get(membership.role, frozenset()):
            raise Http404("Token not found.") from None
        try:
            token = selectors.personal_token_get(organization=membership.organization, token_id=token_id)
        except NotFound as exc:
            raise Http404(str(exc)) from exc
    services.personal_token_revoke(token=token, actor=request.user)
    return redirect("personal-token-list")


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the hashed static name exists only once collectstatic has run.
    return redirect(static("reviewapp/favicon.svg"), permanent=False)


class MemberAddForm(forms.Form):
    identifier = forms.CharField(
        label="Username or email",
        max_length=254,
        help_text="Someone with an account already, or a new username to create one.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)
    email = forms.EmailField(required=False, help_text="For a new account.")
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="For a new account: they sign in with it. Empty: they cannot sign in until one is set.",
    )


def _member_add(request: HttpRequest, form: MemberAddForm) -> bool:
    """Add the person the form names; False with the form's errors set when it cannot."""
    organization = request.membership.organization  # type: ignore[attr-defined]
    if not form.is_valid():
        return False
    data = form.cleaned_data
    identifier = data["identifier"].strip()
    user = selectors.user_find(identifier=identifier)
    if user is None:
        if "@" in identifier:
            form.add_error(
                "identifier", "No account has this email. To create one, enter a new username (and the email below)."
            )
            return False
        try:
            UnicodeUsernameValidator()(identifier)
            if len(identifier) > 150:
                raise DjangoValidationError("A username has at most 150 characters.")
        except DjangoValidationError as exc:
            form.add_error("identifier", exc)
            return False
        if data["password"]:
            try:
                password_validation.validate_password(data["password"])
            except DjangoValidationError as exc:
                form.add_error("password", exc)
                return False
    else:
        if selectors.membership_get(user=user, organization=organization) is not None:
            form.add_error("identifier", "Already a member: change their role in the list below.")
            return False
        if data["password"]:
            # Their password is theirs: an admin of one organization never sets it for an
            # account that may belong to others.
            form.add_error("password", "This person has an account already; leave the password empty.")
            return False
    try:
        services.membership_add(
            organization=organization,
            username=user.get_username() if user is not None else identifier,
            role=data["role"],
            password=(data["password"] or None) if user is None else None,
            email=data["email"] if user is None else "",
            actor=request.user,
        )
    except ValidationFailed as exc:
        for name, problems in exc.errors.items():
            form.add_error(name if name in form.fields else None, problems)
        return False
    return True


def _members_page(
    request: HttpRequest,
    form: MemberAddForm,
    row_errors: dict[int, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = request.membership.organization  # type: ignore[attr-defined]
    members = list(selectors.membership_list(organization=organization))
    admins = [m.pk for m in members if m.role == Role.ADMIN]
    context = {
        "form": form,
        "members": [{"m": m, "errors": (row_errors or {}).get(m.pk, [])} for m in members],
        "roles": Role.choices,
        "last_admin": admins[0] if len(admins) == 1 else None,
    }
    return render(request, "reviewapp/members.html", context, status=status)


@member_required("members.manage")
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest) -> HttpResponse:
    """The organization's people: add someone (an existing account or a new one), change a
    role, remove. Every change goes through the audited membership services, which keep the
    last admin."""
    if request.method == "POST":
        form = MemberAddForm(request.POST)
        if _member_add(request, form):
            messages.success(request, f"Added {form.cleaned_data['identifier'].strip()}.")
            return redirect("members")
        return _members_page(request, form, status=400)
    return _members_page(request, MemberAddForm())


def _membership_or_404(request: HttpRequest, membership_id: int) -> Any:
    organization = request.membership.organization  # type: ignore[attr-defined]
    try:
        return selectors.membership_get_by_id(organization=organization, membership_id=membership_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


@member_required("members.manage")
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _membership_or_404(request, membership_id)
    try:
        services.membership_role_set(membership=membership, role=request.POST.get("role", ""), actor=request.user)
    except ValidationFailed as exc:
        problems = [p for messages_ in exc.errors.values() for p in messages_] or [exc.message]
        return _members_page(request, MemberAddForm(), {membership.pk: problems}, status=400)
    messages.success(request, f"{membership.user.get_username()} is now {membership.get_role_display().lower()}.")
    return redirect("members")


@member_required("members.manage")
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _membership_or_404(request, membership_id)
    try:
        services.membership_remove(membership=membership, actor=request.user)
    except ValidationFailed as exc:
        problems = [p for messages_ in exc.errors.values() for p in messages_] or [exc.message]
        return _members_page(request, MemberAddForm(), {membership.pk: problems}, status=400)
    messages.success(request, f"Removed {membership.user.get_username()} from the organization.")
    if membership.user_id == request.user.pk:
        return redirect("home")
    return redirect("members")
