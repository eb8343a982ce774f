from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.base import DatasetError
from datasets.registry import BUNDLED_BENCHMARKS, load_bundled
from leaderboard.importing import ImportConflict, import_benchmark


class Command(BaseCommand):
    help = "Load the bundled benchmarks (datasets, scenarios, splits) into the database."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help=f"benchmarks to load (default: all of {', '.join(BUNDLED_BENCHMARKS)})")
        parser.add_argument("--replace", action="store_true", help="replace changed splits even if they have submissions")

    def handle(self, *args, **options):
        for slug in options["slugs"] or list(BUNDLED_BENCHMARKS):
            try:
                data = load_bundled(slug)
                total = sum(len(s.instances) for s in data.splits)
                with tqdm(total=total, desc=f"loading {slug}", unit="inst", disable=options["verbosity"] == 0) as bar:
                    benchmark = import_benchmark(data, progress=bar.update, replace=options["replace"])
            except (DatasetError, ImportConflict, ValueError) as exc:
                raise CommandError(f"{slug}: {exc}") from exc
            counts = ", ".join(f"{s.name} {s.instance_count}" for s in benchmark.splits.all())
            self.stdout.write(self.style.SUCCESS(f"{benchmark.name} v{benchmark.version}: {counts}"))
