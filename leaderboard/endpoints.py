"""Checks on a submitted endpoint before anything is queued: URL rules (SSRF) and a live probe."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from evaluation.client import EndpointClient, EndpointConfig, EndpointError


class EndpointRejected(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


def check_url(url: str) -> None:
    """Refuse URLs that would let a submission reach the service's own network (SSRF).

    Private, loopback, link-local and reserved addresses are refused unless the host is on
    ``ACTBOARD_ALLOWED_ENDPOINT_HOSTS`` or ``ACTBOARD_ALLOW_PRIVATE_ENDPOINTS`` is set (local runs).
    Every address the name resolves to is checked, so a public name pointing inside is refused too.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRejected("url_invalid", f"'{url}' is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise EndpointRejected("url_invalid", "put credentials in the API key field, not in the URL")
    host = parts.hostname
    if settings.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS or host in settings.ACTBOARD_ALLOWED_ENDPOINT_HOSTS:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise EndpointRejected("endpoint_unreachable", f"the host '{host}' does not resolve") from None
    blocked = sorted({info[4][0] for info in infos if _private(info[4][0])})
    if blocked:
        raise EndpointRejected(
            "url_not_allowed",
            f"'{host}' resolves to a private, loopback or link-local address ({', '.join(blocked)}); "
            "such endpoints are not allowed on this server",
        )


def probe(base_url: str, model_id: str, api_key: str = "", timeout: float = 15.0) -> None:
    """Check that the endpoint answers and lists the model; raise ``EndpointRejected`` otherwise."""
    check_url(base_url)
    config = EndpointConfig(base_url=base_url, model=model_id, api_key=api_key, timeout=timeout, max_retries=1)
    with EndpointClient(config) as client:
        try:
            client.check()
        except EndpointError as err:
            code = "endpoint_unreachable" if err.code in ("connection", "timeout") else err.code
            raise EndpointRejected(code, err.message) from None
