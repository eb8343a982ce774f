"""docker-compose.yml cannot be run here (no Docker engine): `make compose-check`'s offline checks, and
proof that they catch what they claim to."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from evaluation.baselines import smollm
from scripts.check_compose import compose_problems, main

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_shipped_stack_passes_every_check():
    assert compose_problems(COMPOSE) == []


def test_compose_check_command_exits_zero(capsys):
    assert main([str(ROOT / "docker-compose.yml")]) == 0
    assert "ok (7 services)" in capsys.readouterr().out


def test_llm_service_serves_smollm_from_the_prebuilt_server():
    assert COMPOSE["services"]["llm"]["command"].startswith(f"python -m {smollm.__name__} ")


def broken(change) -> list[str]:
    compose = copy.deepcopy(COMPOSE)
    change(compose["services"])
    return compose_problems(compose)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda s: s.pop("beat"), "service beat is missing"),
    (lambda s: s["worker"].update(image="other:latest"), "worker: not built from this repository"),
    (lambda s: s["beat"]["environment"].update(DATABASE_URL="sqlite:///x"), "beat: DATABASE_URL does not point at the postgres"),
    (lambda s: s["web"]["environment"].update(ACTBOARD_NEVER_READ="1"), "web: sets ACTBOARD_NEVER_READ, which config/settings.py never reads"),
    (lambda s: s["web"].update(command="sh -c 'python manage.py migrate && python manage.py no_such_command'"), "no such management command"),
    (lambda s: s["llm"].update(command="python -m no_such_package.server"), "llm: python -m no_such_package.server: module no_such_package.server is not importable"),
    (lambda s: s["worker"].update(command="celery -A config flower"), "'celery -A config flower' is not in the README"),
    (lambda s: s["web"].update(depends_on={}), "web: does not wait for a healthy postgres"),
])
def test_each_check_catches_its_fault(change, expected):
    problems = broken(change)
    assert any(expected in problem for problem in problems), problems
