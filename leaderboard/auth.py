"""API token authentication: ``Authorization: Bearer acb_...``, with clear 401 messages."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions

from leaderboard.models import ApiToken


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("The Authorization header has no token after 'Bearer'.")
        token = ApiToken.lookup(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown API token. Create one on your account page.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(f"API token '{token.name}' was revoked on {token.revoked_at:%Y-%m-%d}.")
        if token.expires_at is not None and token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed(f"API token '{token.name}' expired on {token.expires_at:%Y-%m-%d}. Create a new one.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The account of this API token is disabled.")
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Documents the token scheme in the OpenAPI schema (Swagger UI's "Authorize" button)."""

    target_class = "leaderboard.auth.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
