"""OpenAPI generation: unique component names for per-view serializers, and the bearer scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        # Every view nests its own `InputSerializer`/`OutputSerializer`; named by class alone they
        # collide and one view's schema silently replaces another's (the token endpoint showed the
        # API-key body). Prefix the enclosing class: `AuthTokenCreateApiInput`.
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            return f"{outer.replace('.', '')}{inner}"
        return super().get_serializer_name(serializer, direction)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "reviewapp.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project API key (`rak_...`) or a personal token (`rat_...`) from /api/v1/auth/token.",
        }
