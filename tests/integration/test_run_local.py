"""`make run`'s command as a person uses it: start the whole stack, press Ctrl-C, get the shell back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.ports import free_port
from tests.integration.conftest import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY_LINE = "Press Ctrl-C to stop."


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc), grandchildren included."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces and parentheses: fields count from its closing ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            left.add(pid)
    return left


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    """The command's output up to the line holding ``marker`` (blocking reads; the deadline is checked per line)."""
    deadline = time.monotonic() + timeout
    output = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"run_local exited ({process.wait()}) before '{marker}':\n{''.join(output)}")
        output.append(line)
        if marker in line:
            return "".join(output)
    raise AssertionError(f"no '{marker}' after {timeout} s:\n{''.join(output)}")


def test_ctrl_c_stops_every_child_within_ten_seconds_and_exits_cleanly(tmp_path):
    # Its own SQLite file and embedded broker, so it shares nothing with the rest of the suite.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(ACTBOARD_VAR_DIR=str(tmp_path), ACTBOARD_ALLOW_PRIVATE_ENDPOINTS="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_local", "--port", str(free_port()), "--llm-max-instances", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        startup = read_until(process, READY_LINE, 600)
        children = children_of(process.pid)
        for name in ("baselines", "worker", "web"):
            assert f"  {name}: " in startup
        # gunicorn and Celery fork workers of their own: those must go too.
        assert len(children) > startup.count(" (log: ")

        process.send_signal(signal.SIGINT)
        stopped_at = time.monotonic()
        output, _ = process.communicate(timeout=10)
        wait_for(lambda: not alive(children), 10 - (time.monotonic() - stopped_at), "every child of run_local to exit")
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, output
    assert "Traceback" not in output and "CommandError" not in output, output
    assert "Stopping Actboard" in output and "Stopped baselines" in output
    assert time.monotonic() - stopped_at < 10
