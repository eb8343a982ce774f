import httpx2  # the Hub client's HTTP layer: its transport errors are not OSErrors
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.base import DatasetError
from datasets.splits import count_rows, fetch, read_folder
from leaderboard.importing import ImportConflict, import_benchmark


class Command(BaseCommand):
    help = (
        "Import a benchmark published by publish_benchmark, from a Hub dataset repo (downloaded into the HF cache) or a "
        "local folder. Every row is validated first; on any error nothing is imported."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--repo-id", help="dataset repo on the Hub, e.g. my-org/opera-actboard")
        source.add_argument("--path", help="a local folder with manifest.json")
        parser.add_argument("--revision", help="branch, tag or commit of the repo (default: main)")
        parser.add_argument("--token", help="Hub token, for private repos")
        parser.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
        parser.add_argument("--replace", action="store_true", help="replace changed splits even if they have submissions")

    def handle(self, *args, **options):
        quiet = options["verbosity"] == 0
        try:
            if options["repo_id"]:
                folder = fetch(options["repo_id"], revision=options["revision"], token=options["token"], endpoint=options["endpoint"])
            else:
                folder = options["path"]
            with tqdm(total=count_rows(folder), desc="validating", unit="row", disable=quiet) as bar:
                contents = read_folder(folder, progress=bar.update)
            data = contents.benchmark
            with tqdm(total=sum(len(s.instances) for s in data.splits), desc=f"importing {data.slug}", unit="inst", disable=quiet) as bar:
                benchmark = import_benchmark(data, progress=bar.update, replace=options["replace"])
        except (DatasetError, ImportConflict, ValueError) as exc:
            raise CommandError(f"nothing imported: {exc}") from exc
        except (OSError, httpx2.HTTPError) as exc:  # HfHubHTTPError is an OSError
            raise CommandError(f"cannot read {options['repo_id'] or options['path']}: {exc}") from exc
        for name in contents.skipped:
            self.stdout.write(f"  {name}: skipped, its references were not published (labels hidden)")
        counts = ", ".join(f"{s.name} {s.instance_count}" for s in benchmark.splits.all())
        self.stdout.write(self.style.SUCCESS(f"{benchmark.name} v{benchmark.version}: {counts}"))
