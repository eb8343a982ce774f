"""The tool-use core runs without Django: these tests must pass with ``-p no:django`` too."""

import pytest


@pytest.fixture(autouse=True)
def _local_endpoints_allowed():
    # Overrides the parent conftest's fixture of this name, which needs pytest-django's `settings`;
    # nothing here goes through the service's endpoint allow-list.
    yield
