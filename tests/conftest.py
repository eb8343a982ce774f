from __future__ import annotations

import pytest

from tests.fault_server import FaultServer


@pytest.fixture(autouse=True)
def _local_endpoints_allowed(settings):
    # Test endpoints listen on 127.0.0.1; the SSRF tests switch this off again.
    settings.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS = True


@pytest.fixture
def fault_server():
    servers: list[FaultServer] = []

    def start(respond, **kwargs) -> FaultServer:
        server = FaultServer(respond, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
