from __future__ import annotations

import pytest

from tests.fault_server import FaultServer


@pytest.fixture(autouse=True)
def _local_endpoints_allowed(settings):
    # Test endpoints listen on 127.0.0.1; the SSRF tests switch this off again.
    settings.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS = True


@pytest.fixture(autouse=True)
def _empty_cache():
    # Board caches are keyed by benchmark id and version; a rolled-back test may reuse both.
    from django.core.cache import cache

    from leaderboard.boards import clear_local_boards

    cache.clear()
    clear_local_boards()


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


@pytest.fixture
def toy_kind(monkeypatch):
    """Register the toy family under the kind "toy" for the duration of a test."""
    from evaluation import registry

    monkeypatch.setitem(registry.EVALUATORS, "toy", "tests.toy_family:ToyEvaluator")
    return "toy"


@pytest.fixture
def toy_benchmark(db, toy_kind):
    from leaderboard.importing import import_benchmark
    from tests.toy_family import toy_benchmark

    return import_benchmark(toy_benchmark())


@pytest.fixture
def adder_endpoint():
    from evaluation.baselines.server import PolicyServer
    from tests.toy_family import AddingPolicy

    server = PolicyServer(AddingPolicy()).start_background()
    yield server
    server.stop()


@pytest.fixture
def dispatched(monkeypatch) -> list[int]:
    """Record the submissions handed to the broker instead of sending start messages (unit tests)."""
    from config.celery_app import app

    sent: list[int] = []
    monkeypatch.setattr(app, "send_task", lambda name, args, **kw: sent.append(args[0]))
    return sent
