"""Fixtures for the OPeRA next-action tests: none of them needs Django or a database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the repo's packages, whichever way pytest was started
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def shared_opera_dir() -> Path:
    """The real OPeRA sample rows shipped in the shared folder (ACTBOARD_SHARED_DIR, default ../shared)."""
    shared = Path(os.environ.get("ACTBOARD_SHARED_DIR", REPO.parent / "shared"))
    folder = shared / "external" / "opera"
    if not folder.is_dir():
        pytest.skip(f"real OPeRA sample rows not found at {folder} (set ACTBOARD_SHARED_DIR to the shared folder)")
    return folder
