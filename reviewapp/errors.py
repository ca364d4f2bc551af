"""Application errors. Services raise these; the API exception handler turns them into
`{"message": ..., "errors": {...}}` with the status they carry."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        if status is not None:
            self.status_code = status


class ValidationFailed(ApplicationError):
    status_code = 400


class NotFound(ApplicationError):
    status_code = 404


class Conflict(ApplicationError):
    """Lost leases, already-decided actions, idempotency key reuse with other content."""

    status_code = 409


class PayloadTooLarge(ApplicationError):
    status_code = 413
