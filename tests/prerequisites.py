"""Tests that need something outside the project (real services, Chromium, the shared reference data).

A developer running a subset of the suite without it gets a skip that says what is missing. ``make test``
(and so CI) sets ``ACTBOARD_REQUIRE_ALL=1``, which turns every such skip into a failure: the full suite
never passes by leaving a part out.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ALL = os.environ.get("ACTBOARD_REQUIRE_ALL") == "1"


def missing(reason: str, *, module_level: bool = False) -> None:
    """Skip, naming what is missing; fail instead under ``make test``."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (make test requires it)", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)
