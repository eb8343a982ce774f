"""docker-compose.yml cannot be run here (no Docker engine); check what can be checked without one."""

from __future__ import annotations

import importlib
import importlib.util
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_production_stack_has_every_service():
    assert {"web", "worker", "beat", "redis", "postgres", "baselines", "llm"} <= set(SERVICES)


def test_app_services_share_the_image_and_point_at_postgres_and_redis():
    for name in ("web", "worker", "beat", "baselines", "llm"):
        service = SERVICES[name]
        assert service["build"] == "." and service["image"] == "actboard:latest", name
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert SERVICES["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def command_lines(service: dict) -> list[list[str]]:
    argv = shlex.split(service["command"])
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in argv[2].split("&&")]
    return [argv]


def test_commands_refer_to_real_entry_points():
    commands = get_commands()
    for name in ("web", "worker", "beat", "baselines"):
        for argv in command_lines(SERVICES[name]):
            if argv[:2] == ["python", "manage.py"]:
                assert argv[2] in commands, argv
            elif argv[:2] == ["python", "-m"]:
                assert importlib.util.find_spec(argv[2] + ".__main__") or importlib.util.find_spec(argv[2]), argv
            elif argv[0] == "gunicorn":
                assert importlib.import_module(argv[1]).application
            else:
                assert argv[:3] == ["celery", "-A", "config"] and importlib.import_module("config").celery_app


def test_llm_service_serves_the_packaged_gguf():
    from evaluation.baselines import smollm

    command = SERVICES["llm"]["command"]
    assert smollm.GGUF_NAME in command and smollm.MODEL_ID in command and "chatml-function-calling" in command


def test_settings_read_every_variable_compose_sets():
    settings_source = (ROOT / "config" / "settings.py").read_text()
    env = SERVICES["web"]["environment"]
    for variable in env:
        assert f'"{variable}"' in settings_source, f"{variable} is set by compose but never read"


def test_dockerfile_installs_the_project_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile and "collectstatic" in dockerfile
