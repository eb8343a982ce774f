from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.base import DatasetError
from datasets.registry import BUNDLED_BENCHMARKS, load_bundled
from leaderboard.importing import ImportConflict, import_benchmark

# Benchmarks that can also be loaded from their real data (a Hub repo id or a folder in the Hub layout).
REAL_SOURCES = {"opera": "datasets.opera.bundle:load_real"}


class Command(BaseCommand):
    help = ("Load the bundled benchmarks (datasets, scenarios, splits) into the database; with --source, load a "
            "benchmark's real data instead (e.g. `load_benchmarks opera --source NEU-HAI/OPeRA`).")

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help=f"benchmarks to load (default: all of {', '.join(BUNDLED_BENCHMARKS)})")
        parser.add_argument("--replace", action="store_true", help="replace changed splits even if they have submissions")
        parser.add_argument("--source", help="the real data: a Hub dataset repo id (through huggingface_hub; offline from "
                                             "its cache with HF_HUB_OFFLINE=1) or a local folder in the Hub layout")
        parser.add_argument("--revision", help="with --source: the Hub revision (branch, tag or commit)")

    def handle(self, *args, **options):
        slugs = options["slugs"] or list(BUNDLED_BENCHMARKS)
        if options["revision"] and not options["source"]:
            raise CommandError("--revision needs --source")
        if options["source"]:
            unknown = [slug for slug in slugs if slug not in REAL_SOURCES]
            if len(slugs) != 1 or unknown:
                raise CommandError(f"--source loads one benchmark's real data: one of {', '.join(REAL_SOURCES)}")
        for slug in slugs:
            try:
                data = self.load(slug, options["source"], options["revision"])
                total = sum(len(s.instances) for s in data.splits)
                with tqdm(total=total, desc=f"loading {slug}", unit="inst", disable=options["verbosity"] == 0) as bar:
                    benchmark = import_benchmark(data, progress=bar.update, replace=options["replace"])
            except (DatasetError, ImportConflict, ValueError, OSError) as exc:
                raise CommandError(f"{slug}: {exc}") from exc
            counts = ", ".join(f"{s.name} {s.instance_count}" for s in benchmark.splits.all())
            origin = f" from {options['source']}" if options["source"] else ""
            self.stdout.write(self.style.SUCCESS(f"{benchmark.name} v{benchmark.version}{origin}: {counts}"))

    @staticmethod
    def load(slug: str, source: str | None, revision: str | None):
        if not source:
            return load_bundled(slug)
        from evaluation.registry import load_object

        try:
            return load_object(REAL_SOURCES[slug])(source, revision=revision)
        except Exception as exc:  # huggingface_hub raises its own errors (offline, not found, gated): name them
            if isinstance(exc, (DatasetError, ValueError, OSError)):
                raise
            raise CommandError(f"{slug}: cannot load {source}: {type(exc).__name__}: {exc}") from exc
