from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.base import DatasetError
from datasets.tau2.bundle import TaskSet, task_json, write_task_folder
from leaderboard.models import Benchmark, TaskInstance


class Command(BaseCommand):
    help = ("Export a tau2-format benchmark's splits as tau2 task files (tasks_<type>.json per scenario and "
            "split_tasks.json), the layout import_tool_tasks reads back.")

    def add_arguments(self, parser):
        parser.add_argument("benchmark", help="slug of a tau2-format benchmark, e.g. tau2-retail")
        parser.add_argument("--out", required=True, help="folder to write")
        parser.add_argument("--include-hidden", action="store_true",
                            help="also write the grading parts of splits whose references are hidden (for maintainers)")

    def handle(self, *args, **o):
        benchmark = Benchmark.objects.filter(slug=o["benchmark"], kind="tau2").first()
        if benchmark is None:
            raise CommandError(f"no tau2-format benchmark '{o['benchmark']}'")
        tasks: dict[str, list] = {}
        splits: dict[str, list[str]] = {}
        domain = ""
        instances = TaskInstance.objects.filter(split__benchmark=benchmark).select_related("split").order_by("split__name", "id")
        for row in tqdm(instances.iterator(chunk_size=200), total=instances.count(), desc="exporting tasks", unit="task"):
            domain = row.input["domain"]
            hidden = row.split.labels_hidden and not o["include_hidden"]
            task = dict(row.input["task"]) if hidden else task_json(row.input, row.reference)
            tasks.setdefault(row.scenario or "standard", []).append((row.key, task))
            splits.setdefault(row.split.name, []).append(row.key)
        if not tasks:
            raise CommandError(f"benchmark '{benchmark.slug}' holds no tasks")
        try:
            files = write_task_folder(TaskSet(domain, tasks, splits, db_hash=""), Path(o["out"]))
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        counts = ", ".join(f"{name} {len(ids)}" for name, ids in splits.items())
        self.stdout.write(self.style.SUCCESS(f"{benchmark.slug}: {counts} tasks written to {', '.join(str(f) for f in files)}"))
