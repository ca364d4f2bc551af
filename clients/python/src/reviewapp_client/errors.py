"""Exceptions raised by the client. Every one derives from `ReviewappError`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reviewapp_client.models import ActionResult


class ReviewappError(Exception):
    """Base class of every error this package raises."""


class NetworkError(ReviewappError):
    """The server could not be reached, or did not answer in time, after every retry.
    The original httpx exception is `__cause__`."""


class ApiError(ReviewappError):
    """The server answered with an error: `{"message": ..., "errors": {field: [...]}}`.

    `status_code` is the HTTP status, `message` the server's sentence, `errors` the
    per-field messages (`{"args.amount": ["..."]}`), `body` the decoded body as sent."""

    def __init__(self, status_code: int, message: str, errors: dict[str, list[str]] | None = None, body: Any = None):
        self.status_code = status_code
        self.message = message
        self.errors: dict[str, list[str]] = errors or {}
        self.body = body
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())
        super().__init__(f"{status_code} {message}" + (f" ({details})" if details else ""))


class BadRequest(ApiError):
    """400: the request was refused; `errors` names the field."""


class AuthenticationError(ApiError):
    """401: the key or token is missing, wrong, revoked or expired."""


class PermissionDenied(ApiError):
    """403: the credential may not do this."""


class NotFound(ApiError):
    """404: no such object in this organization (another tenant's id looks the same)."""


class Conflict(ApiError):
    """409: for `request_action`, the same `external_id` was sent before with a different
    payload (`errors` names the field that differs)."""


class RateLimited(ApiError):
    """429: too many requests. Not retried: the caller decides when to try again."""


class ServerError(ApiError):
    """5xx, still failing after every retry."""


class ApprovalError(ReviewappError):
    """Base class of the outcomes that stop an approval-guarded call from running. The
    function never runs when one of these is raised: approval fails closed."""

    def __init__(self, message: str, result: ActionResult | None = None):
        self.result = result
        super().__init__(message)


class ActionRejected(ApprovalError):
    """The action was rejected (by the policy or a person) or expired on its ladder.

    `comment` is the approver's words (empty for a policy rejection or an expiry): feed it
    back to the model. `result` is the decided `ActionResult`."""

    def __init__(self, comment: str, result: ActionResult):
        self.comment = comment
        detail = comment or result.reason
        message = f"Action {result.id} ({result.action or 'action'}) {result.status}"
        super().__init__(message + (f": {detail}" if detail else ""), result)


class ApprovalTimeout(ApprovalError):
    """Still pending when the wait ran out. The action stays pending on the server (a
    person may still decide it); the call did not run and will not run by itself."""


class DigestMismatch(ApprovalError):
    """The approved `args_digest` is not the digest of the `final_args` received (or of the
    action that was asked for): the args were altered on the way, so nothing runs."""


class ArgsNotApplicable(ApprovalError):
    """The approver edited an arg that `require_approval` cannot map back onto the
    function's parameters (it came from `args_from`), so the approved call cannot be made
    exactly as approved. Map edits yourself: call `request_action` and `wait` directly."""


class InvalidSignature(ReviewappError, ValueError):
    """A webhook's `X-Reviewapp-Signature` is missing, malformed, outside the tolerance
    window, or matches none of the secrets."""
