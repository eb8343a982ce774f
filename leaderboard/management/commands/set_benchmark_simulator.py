import json

from django.core.management.base import BaseCommand, CommandError

from leaderboard.endpoints import EndpointRejected, check_url
from leaderboard.models import Benchmark, llm_role


def _params(text: str | None, option: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option}: not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise CommandError(f"{option}: must be a JSON object of generation parameters")
    return value


def _url(url: str, option: str) -> str:
    try:
        check_url(url)
    except EndpointRejected as err:
        raise CommandError(f"{option}: {err.message}") from None
    return url


class Command(BaseCommand):
    help = ("Set the LLM user simulator (and the NL-assertion judge) of a benchmark. Submissions are evaluated with "
            "them and snapshot them; a changed setting starts a new board (earlier submissions stay on their pages).")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="benchmark slug, e.g. tau2-retail")
        parser.add_argument("--user-base-url", help="OpenAI-compatible base URL of the user simulator's model")
        parser.add_argument("--user-model", help="model id of the user simulator")
        parser.add_argument("--user-api-key", default="", help="API key of the user simulator's endpoint (stored encrypted)")
        parser.add_argument("--params", help="JSON generation parameters of the user simulator, e.g. '{\"temperature\": 0}'")
        parser.add_argument("--judge-base-url", help="base URL of the NL-assertion judge's model")
        parser.add_argument("--judge-model", help="model id of the judge")
        parser.add_argument("--judge-api-key", default="", help="API key of the judge's endpoint (stored encrypted)")
        parser.add_argument("--judge-params", help="JSON generation parameters of the judge")
        parser.add_argument("--clear", action="store_true", help="remove the setting (the benchmark refuses submissions)")

    def handle(self, *args, **o):
        benchmark = Benchmark.objects.filter(slug=o["slug"]).first()
        if benchmark is None:
            raise CommandError(f"no benchmark '{o['slug']}'")
        if not benchmark.needs_simulator:
            raise CommandError(f"{benchmark.slug} ({benchmark.kind}) does not use a user simulator")
        if o["clear"]:
            benchmark.configure_simulator(None)
            self.stdout.write(self.style.WARNING(f"{benchmark.slug}: simulator removed; submissions are refused until one is set"))
            return
        if not (o["user_base_url"] and o["user_model"]):
            raise CommandError("--user-base-url and --user-model are required (or --clear)")
        if bool(o["judge_base_url"]) != bool(o["judge_model"]):
            raise CommandError("give both --judge-base-url and --judge-model, or neither")
        user = llm_role("user", _url(o["user_base_url"], "--user-base-url"), o["user_model"],
                        params=_params(o["params"], "--params"), api_key=o["user_api_key"])
        judge = None
        if o["judge_base_url"]:
            judge = llm_role("judge", _url(o["judge_base_url"], "--judge-base-url"), o["judge_model"],
                             params=_params(o["judge_params"], "--judge-params"), api_key=o["judge_api_key"])
        changed = benchmark.configure_simulator(user, judge)
        shown = json.dumps(benchmark.simulator_shown, sort_keys=True)
        verb = "set; a new board starts" if changed else "unchanged (same models and parameters)"
        self.stdout.write(self.style.SUCCESS(f"{benchmark.slug}: simulator {verb}: {shown} (epoch {benchmark.simulator_epoch[:12]})"))
