"""Domain registry: every subpackage of this package that exposes ``DOMAIN`` is a domain.

Adding a domain is adding a package here; nothing else in the engine names domains.
"""

from __future__ import annotations

import pkgutil
from functools import cache
from importlib import import_module

from datasets.tool_use.domain import Domain


@cache
def all_domains() -> dict[str, Domain]:
    found: dict[str, Domain] = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        domain = getattr(import_module(f"{__name__}.{info.name}"), "DOMAIN", None)
        if isinstance(domain, Domain):
            found[domain.name] = domain
    return dict(sorted(found.items()))


def get_domain(name: str) -> Domain:
    try:
        return all_domains()[name]
    except KeyError:
        raise KeyError(f"unknown tool-use domain '{name}' (known: {', '.join(all_domains())})") from None


def domain_for_tools(names: set[str]) -> Domain | None:
    """The domain whose tool set is exactly ``names`` (how an agent tells domains apart from a request)."""
    for domain in all_domains().values():
        if {t.name for t in domain.tools} == names:
            return domain
    return None
