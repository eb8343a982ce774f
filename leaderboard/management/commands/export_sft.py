import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from leaderboard.models import Benchmark, Submission
from leaderboard.sft import TOOL_USE_KINDS, sft_lines


class Command(BaseCommand):
    help = "Export successful tool-use rollouts as JSONL in the OpenAI chat fine-tuning format."

    def add_arguments(self, parser):
        parser.add_argument("--benchmark", help="benchmark slug (default: every tool-use benchmark)")
        parser.add_argument("--scenario", action="append", dest="scenarios", help="repeat to export several scenarios")
        parser.add_argument("--submission", type=int, help="only this submission's rollouts")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, **o):
        if o["benchmark"] and not Benchmark.objects.filter(slug=o["benchmark"], kind__in=TOOL_USE_KINDS).exists():
            raise CommandError(f"no tool-use benchmark '{o['benchmark']}'")
        if o["submission"] and not Submission.objects.filter(id=o["submission"]).exists():
            raise CommandError(f"no submission #{o['submission']}")
        out = open(o["output"], "w", encoding="utf-8") if o["output"] else sys.stdout  # noqa: SIM115
        count = 0
        try:
            lines = sft_lines(benchmark=o["benchmark"], scenarios=o["scenarios"], submission=o["submission"])
            for line in tqdm(lines, desc="exporting rollouts", unit="rollout", disable=not o["output"]):
                out.write(line + "\n")
                count += 1
        finally:
            if o["output"]:
                out.close()
        self.stderr.write(f"{count} successful rollouts exported{' to ' + o['output'] if o['output'] else ''}")
