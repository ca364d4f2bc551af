"""reviewapp's Python client: log conversations and judge scores, and ask before acting.

    from reviewapp_client import Client, ActionRejected

    client = Client("https://review.example.com", api_key)

    @client.require_approval("refund", confidence=0.72)
    def refund(order_id: str, amount: float) -> None: ...

See README.md for the whole tour.
"""

# Before the submodules: _core reads it for the User-Agent.
__version__ = "0.1.0"

from reviewapp_client.client import AsyncClient, Client
from reviewapp_client.errors import (
    ActionRejected,
    ApiError,
    ApprovalError,
    ApprovalTimeout,
    ArgsNotApplicable,
    AuthenticationError,
    BadRequest,
    Conflict,
    DigestMismatch,
    InvalidSignature,
    NetworkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReviewappError,
    ServerError,
)
from reviewapp_client.gate import GateResult
from reviewapp_client.models import ActionResult, ConversationResult, JudgeScoreResult, args_digest
from reviewapp_client.webhooks import SIGNATURE_HEADER, sign_webhook, verify_webhook

__all__ = [
    "SIGNATURE_HEADER",
    "ActionRejected",
    "ActionResult",
    "ApiError",
    "ApprovalError",
    "ApprovalTimeout",
    "ArgsNotApplicable",
    "AsyncClient",
    "AuthenticationError",
    "BadRequest",
    "Client",
    "Conflict",
    "ConversationResult",
    "DigestMismatch",
    "GateResult",
    "InvalidSignature",
    "JudgeScoreResult",
    "NetworkError",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ReviewappError",
    "ServerError",
    "__version__",
    "args_digest",
    "sign_webhook",
    "verify_webhook",
]
