from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.base import DatasetError
from datasets.tau2.bundle import TaskSet, task_json, write_task_folder
from leaderboard.models import Benchmark, TaskInstance

TASK_KINDS = ("tau2", "tool_use")  # families whose instances are tau2 tasks


class Command(BaseCommand):
    help = ("Export a tau2-format benchmark's splits as tau2 task files (tasks_<type>.json per scenario and "
            "split_tasks.json), the layout import_tool_tasks reads back.")

    def add_arguments(self, parser):
        parser.add_argument("benchmark", help="slug of a tau2-format benchmark, e.g. tau2-retail or trajectory2task")
        parser.add_argument("--out", required=True, help="folder to write")
        parser.add_argument("--include-hidden", action="store_true",
                            help="also write the grading parts of splits whose references are hidden (for maintainers)")

    def handle(self, *args, **o):
        benchmark = Benchmark.objects.filter(slug=o["benchmark"], kind__in=TASK_KINDS).first()
        if benchmark is None:
            raise CommandError(f"no tau2-format benchmark '{o['benchmark']}'")
        by_domain: dict[str, TaskSet] = {}
        left_out = 0
        instances = TaskInstance.objects.filter(split__benchmark=benchmark).select_related("split").order_by("split__name", "id")
        for row in tqdm(instances.iterator(chunk_size=200), total=instances.count(), desc="exporting tasks", unit="task"):
            domain = row.input["domain"]
            hidden = row.split.labels_hidden and not o["include_hidden"]
            task = dict(row.input["task"]) if hidden else task_json(row.input, row.reference)
            if "user_scenario" not in task:
                # A generated task publishes only its id on a hidden split: nothing a task file could hold.
                left_out += 1
                continue
            task_set = by_domain.setdefault(domain, TaskSet(domain, {}, {}, db_hash=""))
            task_set.tasks.setdefault(row.scenario or "standard", []).append((row.key, task))
            task_set.splits.setdefault(row.split.name, []).append(row.key)
        if not by_domain:
            raise CommandError(f"benchmark '{benchmark.slug}' holds no tasks to export"
                               + (" without --include-hidden" if left_out else ""))
        for domain, task_set in by_domain.items():
            # One folder per domain when the benchmark spans several (the bundled Trajectory2Task tasks).
            folder = Path(o["out"]) / domain if len(by_domain) > 1 else Path(o["out"])
            try:
                files = write_task_folder(task_set, folder)
            except DatasetError as exc:
                raise CommandError(str(exc)) from None
            counts = ", ".join(f"{name} {len(ids)}" for name, ids in task_set.splits.items())
            self.stdout.write(self.style.SUCCESS(f"{benchmark.slug} ({domain}): {counts} tasks written to {', '.join(str(f) for f in files)}"))
        if left_out:
            self.stdout.write(f"{left_out} tasks of hidden splits left out: only their ids are public (--include-hidden writes them)")
