from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evaluation.base import OVERALL
from evaluation.errors import CodedError
from evaluation.registry import get_evaluator_class
from leaderboard.endpoints import EndpointRejected, check_url
from leaderboard.models import Benchmark, ModelEntry, Submission
from leaderboard.submissions import create_submission
from worker.lifecycle import run_inline, run_submission


class Command(BaseCommand):
    help = "Evaluate an OpenAI-compatible endpoint on a benchmark, synchronously, and print its scores."

    def add_arguments(self, parser):
        parser.add_argument("--benchmark", required=True, help="benchmark slug, e.g. opera")
        parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8100/v1")
        parser.add_argument("--model", required=True, help="model id as the endpoint lists it")
        parser.add_argument("--api-key", default="")
        parser.add_argument("--name", help="name on the leaderboard (default: the model id)")
        parser.add_argument("--organisation", default="")
        parser.add_argument("--split", default="test")
        parser.add_argument("--scenarios", nargs="*", help="default: all")
        parser.add_argument("--trials", type=int)
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--max-instances", type=int, help="evaluate only the first N instances per scenario")
        parser.add_argument("--private", action="store_true", help="do not show the result on the public leaderboard")

    def handle(self, *args, **o):
        benchmark = Benchmark.objects.filter(slug=o["benchmark"]).first()
        if benchmark is None:
            raise CommandError(f"no benchmark '{o['benchmark']}'; run `manage.py load_benchmarks` first")
        split = benchmark.splits.filter(name=o["split"]).first()
        if split is None:
            raise CommandError(f"benchmark '{benchmark.slug}' has no split '{o['split']}'")
        try:
            check_url(o["base_url"])
        except EndpointRejected as err:
            raise CommandError(f"{o['base_url']}: {err.message}") from None
        model, _ = ModelEntry.objects.get_or_create(
            name=o["name"] or o["model"], base_url=o["base_url"], model_id=o["model"], defaults={"organisation": o["organisation"]}
        )
        if o["api_key"]:
            model.api_key = o["api_key"]
            model.save(update_fields=["api_key_encrypted"])
        try:
            submission = create_submission(
                model=model, benchmark=benchmark, split=split, scenarios=o["scenarios"], trials=o["trials"],
                concurrency=o["concurrency"], max_instances=o["max_instances"], is_public=not o["private"], enqueue=False,
            )
        except CodedError as err:
            raise CommandError(err.message) from None
        # The same path as a Celery worker's, with the batches run here, under a progress bar.
        with tqdm(total=submission.progress_total, desc=f"#{submission.id} {model.name}", unit="call") as bar:
            run_submission(submission.id, run_inline(on_progress=lambda: bar.update(1)))
        submission.refresh_from_db()
        self.print_scores(submission)
        if submission.status != Submission.Status.FINISHED:
            raise CommandError(f"submission #{submission.id} {submission.status}: {submission.error_message}")

    def print_scores(self, submission: Submission) -> None:
        metrics = get_evaluator_class(submission.benchmark.kind).metrics
        scores = {(s.scenario, s.metric): s for s in submission.scores.all()}
        scenarios = list(submission.scenarios) + [OVERALL]
        width = max(len(m.label) for m in metrics) + 2
        self.stdout.write(f"\nSubmission #{submission.id}: {submission.model.name} on {submission.benchmark.name} ({submission.status})")
        self.stdout.write("metric".ljust(width) + "".join(s[:14].rjust(16) for s in scenarios))
        for m in metrics:
            cells = []
            for s in scenarios:
                score = scores.get((s, m.name))
                if score is None:
                    cells.append("-".rjust(16))
                    continue
                value = f"{100 * score.value:.2f}" if m.unit == "ratio" else f"{score.value:.2f}"
                if score.ci_low is not None and m.unit == "ratio":
                    value += f" ±{100 * (score.ci_high - score.ci_low) / 2:.1f}"
                cells.append(value.rjust(16))
            arrow = "↑" if m.higher_is_better else "↓"
            self.stdout.write(f"{m.label} {arrow}".ljust(width) + "".join(cells))
        if submission.error_message:
            self.stdout.write(self.style.WARNING(submission.error_message))
