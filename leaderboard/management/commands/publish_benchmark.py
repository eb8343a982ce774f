import tempfile
from pathlib import Path

import httpx2  # the Hub client's HTTP layer: its transport errors are not OSErrors
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.splits import publish, write_folder
from leaderboard.downloads import benchmark_meta, exports
from leaderboard.models import Benchmark


class Command(BaseCommand):
    help = (
        "Publish a benchmark's splits (inputs, and references except for hidden splits), a manifest and a dataset "
        "card as a Hugging Face dataset repo."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the benchmark to publish")
        parser.add_argument("--repo-id", required=True, help="dataset repo on the Hub, e.g. my-org/opera-actboard")
        parser.add_argument("--local-dir", help="write the folder here (kept); default: a temporary folder")
        parser.add_argument("--dry-run", action="store_true", help="write the folder, do not push")
        parser.add_argument("--private", action="store_true", help="create the repo as private")
        parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the cached login)")
        parser.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")

    def handle(self, *args, **options):
        benchmark = Benchmark.objects.prefetch_related("scenarios").filter(slug=options["slug"]).first()
        if benchmark is None:
            known = ", ".join(Benchmark.objects.values_list("slug", flat=True)) or "none loaded"
            raise CommandError(f"no benchmark '{options['slug']}' (known: {known})")
        if options["dry_run"] and not options["local_dir"]:
            raise CommandError("--dry-run needs --local-dir, to keep what would be pushed")
        with tempfile.TemporaryDirectory(prefix="actboard-publish-") as scratch:
            folder = Path(options["local_dir"] or scratch)
            splits = exports(benchmark)
            with tqdm(total=sum(s.instances for s in splits), desc=f"writing {benchmark.slug}", unit="inst",
                      disable=options["verbosity"] == 0) as bar:
                manifest = write_folder(benchmark_meta(benchmark), splits, folder, progress=bar.update)
            for split in manifest["splits"]:
                refs = "inputs and references" if split["references_included"] else "inputs only (labels hidden)"
                self.stdout.write(f"  {split['name']}: {split['instances']} instances, {refs}")
            if options["dry_run"]:
                self.stdout.write(self.style.SUCCESS(f"Dry run: wrote {folder}; would push to datasets/{options['repo_id']}"))
                return
            try:
                url = publish(folder, options["repo_id"], token=options["token"], private=options["private"], endpoint=options["endpoint"],
                              commit_message=f"Publish {benchmark.slug} v{benchmark.version}")
            except (OSError, httpx2.HTTPError) as exc:  # HfHubHTTPError is an OSError
                raise CommandError(f"pushing to {options['repo_id']} failed: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Published {benchmark.slug} v{benchmark.version}: {url}"))
