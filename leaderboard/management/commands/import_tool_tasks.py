from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.base import DatasetError
from datasets.tau2 import DOMAINS
from datasets.tau2.bundle import benchmark_data, read_task_folder
from leaderboard.importing import ImportConflict, import_benchmark

TASK_FILE_PATTERNS = ["*.json"]


def fetch_task_folder(repo_id: str, *, revision: str | None = None, endpoint: str | None = None, token: str | None = None) -> Path:
    """A Hub dataset repo laid out as tau2 files, downloaded (or reused from the HF cache); its local folder."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, endpoint=endpoint, token=token,
                                  allow_patterns=TASK_FILE_PATTERNS))


class Command(BaseCommand):
    help = ("Host a tau2-format task set (a local folder, or a Hub dataset repo laid out as tau2 files: tasks_<type>.json "
            "or tasks.json with a 'type' per task, optional split_tasks.json and db.json) as a tau2 benchmark, one "
            "scenario tab per task type. Nothing is imported unless every file checks out.")

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--path", help="a local folder of tau2 files")
        source.add_argument("--repo-id", help="a Hub dataset repo (ORG/NAME) of tau2 files")
        parser.add_argument("--revision", help="with --repo-id: branch, tag or commit")
        parser.add_argument("--endpoint", help="with --repo-id: the Hub's address (default: huggingface.co)")
        parser.add_argument("--token", help="with --repo-id: a Hub token for a private repo")
        parser.add_argument("--slug", required=True, help="the benchmark's slug")
        parser.add_argument("--name", help="the benchmark's name (default: the slug)")
        parser.add_argument("--set-version", default="1", help="the task set's version (default: 1)")
        parser.add_argument("--license", default="", help="the task set's license")
        parser.add_argument("--domain", choices=DOMAINS, help="the tau2 domain (default: the one the tasks name)")
        parser.add_argument("--replace", action="store_true", help="replace changed splits even if they have submissions")

    def handle(self, *args, **o):
        if (o["revision"] or o["endpoint"] or o["token"]) and not o["repo_id"]:
            raise CommandError("--revision, --endpoint and --token go with --repo-id")
        source = o["path"] or f"{o['repo_id']}@{o['revision'] or 'main'}"
        try:
            folder = Path(o["path"]) if o["path"] else fetch_task_folder(o["repo_id"], revision=o["revision"], endpoint=o["endpoint"], token=o["token"])
            task_set = read_task_folder(folder, o["domain"])
            data = benchmark_data(
                task_set, slug=o["slug"], name=o["name"] or o["slug"], version=o["set_version"], license=o["license"],
                description=(f"tau2-format tool-use tasks on tau2's {task_set.domain} environment, imported from {source}. "
                             "An LLM plays the customer; a trial is graded on the task's reward basis. Metric: pass^k."),
            )
            benchmark = import_benchmark(data, replace=o["replace"])
        except (DatasetError, ImportConflict) as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:  # huggingface_hub's own errors (not found, offline, gated): say which repo
            if o["path"] or isinstance(exc, CommandError):
                raise
            raise CommandError(f"cannot fetch {source}: {type(exc).__name__}: {exc}") from exc
        counts = ", ".join(f"{s.name} {s.instance_count}" for s in benchmark.splits.all())
        tabs = ", ".join(f"{scenario} {len(tasks)}" for scenario, tasks in task_set.tasks.items())
        self.stdout.write(self.style.SUCCESS(f"{benchmark.slug} ({task_set.domain}) from {source}: {counts}; tasks by type: {tabs}"))
        if benchmark.needs_simulator and not benchmark.has_simulator:
            self.stdout.write(f"Set its user simulator before it takes submissions: manage.py set_benchmark_simulator {benchmark.slug} ...")
