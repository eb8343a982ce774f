from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.tool_use.generator import DOMAINS, SCENARIOS, generate_tasks, write_folder
from evaluation.client import EndpointClient, EndpointConfig
from leaderboard.endpoints import address_policy_from_settings


class Command(BaseCommand):
    help = ("Generate, verify and write Trajectory2Task tasks on a tau2 domain: tau2-format task files per scenario, "
            "split_tasks.json (train/dev/test, split by customer) and manifest.json.")

    def add_arguments(self, parser):
        parser.add_argument("--domain", required=True, choices=DOMAINS)
        parser.add_argument("--test-per-scenario", type=int, default=50,
                            help="verified test tasks per scenario; train and dev follow the split proportions")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--out", required=True, help="folder; files go to <out>/<domain>/")
        parser.add_argument("--paraphrase-base-url", help="optional: an endpoint that rewrites opening lines (off by default)")
        parser.add_argument("--paraphrase-model", default="")

    def handle(self, *args, **o):
        if o["test_per_scenario"] < 1:
            raise CommandError("--test-per-scenario must be at least 1")
        paraphraser = None
        if o["paraphrase_base_url"]:
            paraphraser = EndpointClient(EndpointConfig(o["paraphrase_base_url"], o["paraphrase_model"],
                                                        address_policy=address_policy_from_settings()))
        with tqdm(desc=f"{o['domain']} tasks", unit="task") as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                generation = generate_tasks(o["domain"], o["test_per_scenario"], o["seed"], progress=progress, paraphraser=paraphraser)
            finally:
                if paraphraser is not None:
                    paraphraser.close()
        manifest = write_folder(generation, o["out"])
        self.stdout.write(f"{'scenario':<12}{'generated':>10}{'verified':>10}{'dropped':>9}")
        for scenario in SCENARIOS:
            r = manifest["report"][scenario]
            self.stdout.write(f"{scenario:<12}{r['generated']:>10}{r['verified']:>10}{r['dropped']:>9}")
        for split, counts in manifest["counts"].items():
            self.stdout.write(f"{split:<6}{sum(counts.values()):>5} tasks, writes per task {manifest['writes_per_task'][split]}")
        self.stdout.write(f"written to {o['out']}/{o['domain']}/")
