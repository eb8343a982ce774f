from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.tool_use.domains import all_domains
from datasets.tool_use.pipeline import generate
from evaluation.client import EndpointClient, EndpointConfig


class Command(BaseCommand):
    help = "Generate, verify and write Trajectory2Task tool-use splits for one domain (train/dev/test JSONL + manifest)."

    def add_arguments(self, parser):
        parser.add_argument("--domain", required=True, help=f"one of: {', '.join(all_domains())}")
        parser.add_argument("--n", type=int, default=200, help="verified tasks to keep, split evenly over the four scenarios")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--out", required=True, help="folder; files go to <out>/<domain>/")
        parser.add_argument("--paraphrase-base-url", help="optional: an endpoint that rewrites opening lines (off by default)")
        parser.add_argument("--paraphrase-model", default="")

    def handle(self, *args, **o):
        if o["domain"] not in all_domains():
            raise CommandError(f"unknown domain '{o['domain']}' (known: {', '.join(all_domains())})")
        if o["n"] < 4:
            raise CommandError("--n must be at least 4 (one task per scenario)")
        paraphraser = None
        if o["paraphrase_base_url"]:
            paraphraser = EndpointClient(EndpointConfig(o["paraphrase_base_url"], o["paraphrase_model"]))
        with tqdm(total=o["n"], desc=f"{o['domain']} tasks", unit="task") as bar:
            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            try:
                manifest = generate(o["domain"], o["n"], o["seed"], o["out"], progress=progress, paraphraser=paraphraser)
            finally:
                if paraphraser is not None:
                    paraphraser.close()
        self.stdout.write(manifest.table())
        self.stdout.write(f"explored: {manifest.exploration}")
        for split, info in manifest.files.items():
            self.stdout.write(f"{split:<6}{info['rows']:>5} tasks  sha256 {info['sha256'][:16]}…  {o['out']}/{manifest.domain}/{info['path']}")
