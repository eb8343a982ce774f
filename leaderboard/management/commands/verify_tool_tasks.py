from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.base import DatasetError
from evaluation.tau2.replay import read_domain_tasks, verify_tasks, write_report

DOMAINS = ("retail", "airline")


class Command(BaseCommand):
    help = "Replay every tau2 task's gold actions on a fresh copy of the domain's database and report which fail."

    def add_arguments(self, parser):
        parser.add_argument("--domain", choices=DOMAINS, required=True)
        parser.add_argument("--tasks", required=True, help="a tau2 task file (JSON list of tasks)")
        parser.add_argument("--db", help="the database to replay on (default: the domain's bundled db.json)")
        parser.add_argument("--json", dest="json_out", help='write {"<task id>": {"errors": [...], "changed": {...}}} here')

    def handle(self, *args, **o):
        domain = o["domain"]
        try:
            tasks = read_domain_tasks(domain, o["tasks"])
            bar = lambda items: tqdm(items, desc=f"replaying {domain}", unit="task", disable=o["verbosity"] == 0)  # noqa: E731
            report = verify_tasks(domain, tasks, o["db"], progress=bar)
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        failing = {task_id: entry["errors"] for task_id, entry in report.items() if entry["errors"]}
        self.stdout.write(f"{domain}: {len(report) - len(failing)} of {len(report)} tasks replay cleanly, {len(failing)} fail")
        for task_id, errors in failing.items():
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            self.stdout.write(f"  task {task_id}: {errors[0]}{more}")
        if o["json_out"]:
            write_report(report, o["json_out"])
            self.stdout.write(f"report written to {o['json_out']}")
