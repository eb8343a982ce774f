"""Authentication: API tokens (``Authorization: Bearer acb_...``, with clear 401 messages) and password
log-ins throttled per account and per client address.

Throttling lives in the authentication backend, so every password check goes through it (the log-in
page, the admin's, any later one); the log-in form only turns a lock into a readable message. Counters
live in the default cache: per process with the local-memory cache, shared by every web process once
``CACHE_URL`` points at Redis.
"""

from __future__ import annotations

import hashlib
import math
import time

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
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


def client_address(request: HttpRequest) -> str:
    """The client's IP address: ``REMOTE_ADDR``, or behind ``ACTBOARD_TRUSTED_PROXIES`` reverse proxies
    the address the outermost of them saw (the one a client cannot forge in ``X-Forwarded-For``)."""
    proxies = settings.ACTBOARD_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


class LoginThrottle:
    """Failed password checks per account and per client address, counted in a window that starts at the
    first failure; at the limit the key is locked for the lockout period and no password is checked.

    Unknown user names are counted like real ones, so neither the lock nor its message tells whether
    an account exists. The address limit is higher than the account one: many people may share an
    address (an office, a NAT), while one account has one owner.
    """

    PREFIX = "login-throttle"

    def __init__(self, request: HttpRequest | None, username: str | None) -> None:
        self.limits: dict[str, int] = {}
        if username:
            account = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
            self.limits[f"account:{account}"] = settings.ACTBOARD_LOGIN_FAILURES_PER_ACCOUNT
        if request is not None and (address := client_address(request)):
            self.limits[f"address:{address}"] = settings.ACTBOARD_LOGIN_FAILURES_PER_ADDRESS
        self.window = settings.ACTBOARD_LOGIN_LOCKOUT_SECONDS

    def _key(self, kind: str, subject: str) -> str:
        return f"{self.PREFIX}:{kind}:{subject}"

    def wait_seconds(self) -> int:
        """Seconds until every lock on this account and address is lifted; 0 when none is locked."""
        locks = cache.get_many([self._key("lock", subject) for subject in self.limits])
        return max((math.ceil(until - time.time()) for until in locks.values()), default=0)

    def failed(self) -> None:
        for subject, limit in self.limits.items():
            counter = self._key("failures", subject)
            cache.add(counter, 0, timeout=self.window)  # a no-op while a window is open
            try:
                failures = cache.incr(counter)
            except ValueError:  # the window closed between add and incr
                cache.set(counter, failures := 1, timeout=self.window)
            if failures >= limit:
                cache.set(self._key("lock", subject), time.time() + self.window, timeout=self.window)
                cache.delete(counter)

    def succeeded(self) -> None:
        """A correct password clears the account's failures. Not the address's: an attacker could
        otherwise reset them by logging in to an account of their own between guesses."""
        cache.delete_many([self._key("failures", s) for s in self.limits if s.startswith("account:")])


class LoginThrottled(PermissionDenied):
    def __init__(self, wait_seconds: int) -> None:
        super().__init__(f"too many failed log-in attempts; locked for {wait_seconds} s")
        self.wait_seconds = wait_seconds


class ThrottledModelBackend(ModelBackend):
    """Django's user/password backend behind a ``LoginThrottle``: a locked account or address is refused
    before its password is checked, so guesses made during a lock learn nothing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        throttle = LoginThrottle(request, username)
        if wait := throttle.wait_seconds():
            raise LoginThrottled(wait)  # stops authenticate() from trying further backends
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            throttle.failed()
        else:
            throttle.succeeded()
        return user


def wait_message(wait_seconds: int) -> str:
    minutes = max(1, math.ceil(wait_seconds / 60))
    return f"Too many failed log-in attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


class ThrottledAuthenticationForm(AuthenticationForm):
    """The log-in form, saying so when the throttle refuses, the same whether or not the account exists."""

    throttled_for = 0  # seconds, once the throttle refused this attempt

    def clean(self):
        throttle = LoginThrottle(self.request, self.cleaned_data.get("username"))
        if wait := throttle.wait_seconds():
            self._refuse(wait)
        try:
            return super().clean()
        except forms.ValidationError:
            if wait := throttle.wait_seconds():  # this failure was the one that reached the limit
                self._refuse(wait)
            raise

    def _refuse(self, wait_seconds: int) -> None:
        self.throttled_for = wait_seconds
        raise forms.ValidationError(wait_message(wait_seconds), code="throttled")
