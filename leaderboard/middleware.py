"""The Content-Security-Policy header of every response.

The pages run no inline script and no inline style: scripts and styles come from the site's own files
(``static/``, plotly.js at ``/plotly.min.js``, Swagger UI from drf-spectacular-sidecar), charts are JSON
data blocks that ``static/js/charts.js`` draws. So the policy can be the same for every response, with
no nonce, and an injected ``<script>``, event handler or ``style`` attribute does not run.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    """Sets ``settings.ACTBOARD_CSP`` on responses that do not carry a policy of their own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = policy(settings.ACTBOARD_CSP)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.header:
            response.headers.setdefault(HEADER, self.header)
        return response
