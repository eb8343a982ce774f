"""Check docker-compose.yml offline (no Docker engine needed): ``python scripts/check_compose.py [FILE]``.

What can be checked without starting a container: every service the stack needs is there; the app services
share one image and point at the compose PostgreSQL and Redis; each command names a real entry point of
this project; the settings read every variable compose sets; the Dockerfile installs what the commands
run; and every app service's command is in the README's "Running the stack by hand", so the stack also
runs without Docker. Prints one line per problem; exits 1 if there is any.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_SERVICES = {"web", "worker", "beat", "redis", "postgres", "baselines", "llm"}
APP_SERVICES = ("web", "worker", "beat", "baselines", "llm")
BY_HAND_HEADING = "## Running the stack by hand"


def command_lines(service: dict[str, Any]) -> list[list[str]]:
    """A service's command as argument lists: ``sh -c "a && b"`` is two commands."""
    argv = shlex.split(service["command"]) if isinstance(service["command"], str) else list(service["command"])
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in argv[2].split("&&")]
    return [argv]


def entry_point_problem(argv: list[str]) -> str | None:
    """Why ``argv`` does not start something this project has, or None if it does."""
    from django.core.management import get_commands

    if argv[:2] == ["python", "manage.py"]:
        return None if len(argv) > 2 and argv[2] in get_commands() else "no such management command"
    if argv[:2] == ["python", "-m"]:
        module = argv[2]
        try:
            return None if importlib.util.find_spec(module) else f"module {module} is not importable"
        except ModuleNotFoundError as exc:  # its parent package is missing
            return f"module {module} is not importable ({exc})"
    if argv[0] == "gunicorn":
        module, _, attribute = argv[1].partition(":")
        return None if hasattr(importlib.import_module(module), attribute or "application") else "no WSGI application"
    if argv[:3] == ["celery", "-A", "config"]:
        return None if hasattr(importlib.import_module("config"), "celery_app") else "config has no celery_app"
    return "not a command of this project"


def by_hand_program(argv: list[str]) -> str:
    """How the README's by-hand section spells the program a command runs (its arguments may differ)."""
    if argv[:2] == ["python", "manage.py"]:
        return f"manage.py {argv[2]}"
    if argv[:2] == ["python", "-m"]:
        return f"python -m {argv[2]}"
    if argv[0] == "celery":
        return " ".join(argv[:4])  # celery -A config worker|beat
    return " ".join(argv[:2])  # gunicorn config.wsgi


def by_hand_section(readme: str) -> str:
    _, _, rest = readme.partition(BY_HAND_HEADING)
    return rest.split("\n## ", 1)[0]


def compose_problems(compose: dict[str, Any], root: Path = ROOT) -> list[str]:
    services = compose.get("services") or {}
    problems = [f"service {name} is missing" for name in sorted(REQUIRED_SERVICES - set(services))]
    settings_source = (root / "config" / "settings.py").read_text()
    by_hand = by_hand_section((root / "README.md").read_text())
    for name in APP_SERVICES:
        service = services.get(name)
        if service is None:
            continue
        if service.get("build") != "." or service.get("image") != "actboard:latest":
            problems.append(f"{name}: not built from this repository as actboard:latest")
        env = service.get("environment") or {}
        if "@postgres:5432/" not in str(env.get("DATABASE_URL", "")):
            problems.append(f"{name}: DATABASE_URL does not point at the postgres service")
        if not str(env.get("CELERY_BROKER_URL", "")).startswith("redis://redis:6379"):
            problems.append(f"{name}: CELERY_BROKER_URL does not point at the redis service")
        problems += [f"{name}: sets {variable}, which config/settings.py never reads"
                     for variable in env if f'"{variable}"' not in settings_source]
        if "command" not in service:
            problems.append(f"{name}: no command")
            continue
        for argv in command_lines(service):
            problem = entry_point_problem(argv)
            if problem:
                problems.append(f"{name}: {shlex.join(argv)}: {problem}")
            elif not re.search(re.escape(by_hand_program(argv)) + r"(\s|$)", by_hand):
                problems.append(f"{name}: '{by_hand_program(argv)}' is not in the README's \"Running the stack by hand\"")
    web_depends = (services.get("web") or {}).get("depends_on") or {}
    if not isinstance(web_depends, dict) or (web_depends.get("postgres") or {}).get("condition") != "service_healthy":
        problems.append("web: does not wait for a healthy postgres")
    dockerfile = (root / "Dockerfile").read_text()
    for needed in ("pip install --no-cache-dir -r requirements.txt", "requirements-llm.txt", "collectstatic"):
        if needed not in dockerfile:
            problems.append(f"Dockerfile: no '{needed}'")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else ROOT / "docker-compose.yml"
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise, on importing the WSGI app before collectstatic
    compose = yaml.safe_load(path.read_text())
    problems = compose_problems(compose)
    for problem in problems:
        print(f"{path}: {problem}")
    if not problems:
        print(f"{path}: ok ({len(compose['services'])} services)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
