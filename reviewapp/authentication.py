"""`Authorization: Bearer <token>` for project API keys and personal tokens."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from reviewapp import selectors, services
from reviewapp.principal import AgentUser, Principal


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[object, Principal] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Bearer <token>'.")
        principal = selectors.principal_from_token(raw=parts[1])
        if principal is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        services.credential_touch(principal=principal)
        if principal.api_key is not None:
            return AgentUser(principal.api_key), principal
        return principal.user, principal

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
