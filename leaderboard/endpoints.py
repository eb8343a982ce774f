"""Checks on a submitted endpoint before anything is queued (URL rules, a live probe), and the SSRF policy
every connection to a submitted endpoint is held to (``address_policy_from_settings``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings

from evaluation.client import EndpointClient, EndpointConfig, EndpointError
from evaluation.errors import CodedError
from evaluation.netguard import AddressPolicy, AddressRefused


class EndpointRejected(CodedError):
    """A submitted endpoint the service will not evaluate, with the reason for the form or the API."""


def address_policy_from_settings() -> AddressPolicy:
    """The policy for clients of submitted endpoints (probe, worker, simulators).

    Only globally routable addresses, unless ``ACTBOARD_ALLOW_PRIVATE_ENDPOINTS`` is set (local runs).
    ``ACTBOARD_ALLOWED_ENDPOINT_HOSTS`` names hosts allowed anyway; entries in CIDR notation
    (``10.8.0.0/16``) allow addresses in that network whatever the host name.
    """
    entries = [entry.strip().lower() for entry in settings.ACTBOARD_ALLOWED_ENDPOINT_HOSTS if entry.strip()]
    return AddressPolicy(
        allow_private=settings.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS,
        allowed_hosts=frozenset(entry for entry in entries if "/" not in entry),
        allowed_networks=tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if "/" in entry),
    )


def check_url(url: str, policy: AddressPolicy | None = None) -> None:
    """Refuse URLs that would let a submission reach the service's own network (SSRF), with a message
    for the form. Connections are checked again when made (see ``evaluation.netguard``): a name may
    resolve elsewhere by then."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRejected("url_invalid", f"'{url}' is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise EndpointRejected("url_invalid", "put credentials in the API key field, not in the URL")
    policy = policy or address_policy_from_settings()
    if not policy.restricts(parts.hostname):
        return
    try:
        policy.addresses_for(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except AddressRefused as err:
        raise EndpointRejected("url_not_allowed", str(err)) from None
    except (OSError, UnicodeError, ValueError):
        raise EndpointRejected("endpoint_unreachable", f"the host '{parts.hostname}' does not resolve") from None


def probe(base_url: str, model_id: str, api_key: str = "", timeout: float = 15.0, *, policy: AddressPolicy | None = None) -> None:
    """Check that the endpoint answers and lists the model; raise ``EndpointRejected`` otherwise."""
    policy = policy or address_policy_from_settings()
    check_url(base_url, policy)
    config = EndpointConfig(base_url=base_url, model=model_id, api_key=api_key, timeout=timeout, max_retries=1, address_policy=policy)
    with EndpointClient(config) as client:
        try:
            client.check()
        except EndpointError as err:
            code = {"connection": "endpoint_unreachable", "timeout": "endpoint_unreachable", "address_refused": "url_not_allowed"}
            raise EndpointRejected(code.get(err.code, err.code), err.message) from None
