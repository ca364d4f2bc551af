"""OpenAPI generation: unique component names for per-view serializers, the error answers
every operation can give, and the bearer scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse

from reviewapp.permissions import IsOrganizationMember

# The error answers, all in the one shape `{"message": str, "errors": {field: [str]}}` (the
# `Error` component), and when an operation can give each. A view documents the rest itself
# (409 where a lease or a decision can be lost).
_ERRORS = {
    "400": "Invalid input; `errors` names each field (a dotted path) with its messages.",
    "401": "No bearer token, or an invalid, expired or revoked one.",
    "403": "Your role may not do this.",
    "404": "No such object in your organization.",
    "413": "The body is over the size limit.",
    "415": "The body is not `application/json`.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
}


def _error_component() -> Any:
    from reviewapp.serializers import ERROR_RESPONSE  # the views' own: one component, not two

    return ERROR_RESPONSE


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        # Here rather than in get_response_serializers: @extend_schema replaces that method.
        out = super()._get_response_bodies(direction)
        view = self.view
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        guarded = any(isinstance(p, IsOrganizationMember) for p in view.get_permissions())
        wanted = {
            "400": has_body or bool(self.get_override_parameters()),  # a body or query parameters
            "401": guarded or bool(view.get_authenticators()),
            "403": guarded,
            "404": "{" in self.path,  # an object named in the path
            "413": has_body,
            "415": has_body,
            "429": bool(view.get_throttles()),
        }
        for code, needed in wanted.items():
            if needed and code not in out:
                error = OpenApiResponse(_error_component(), description=_ERRORS[code])
                out[code] = self._get_response_for_code(error, code, direction=direction)
        return dict(sorted(out.items()))

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        # Every view nests its own `InputSerializer`/`OutputSerializer`; named by class alone they
        # collide and one view's schema silently replaces another's (the token endpoint showed the
        # API-key body). Prefix the enclosing class: `AuthTokenCreateApiInput`. `responses={200:
        # OutputSerializer}` hands over the class itself, `OutputSerializer()` an instance.
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
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
