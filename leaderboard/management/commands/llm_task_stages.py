import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.base import DatasetError
from datasets.tool_use import llm_stages
from evaluation.client import EndpointClient, EndpointConfig, EndpointError
from leaderboard.endpoints import EndpointRejected, address_policy_from_settings, probe

DOMAINS = ("retail", "airline")
UNITS = {"explore": "trajectory", "summarise": "task", "judge": "task"}


class Command(BaseCommand):
    help = ("Trajectory2Task's LLM stages on tau2's environments over an OpenAI-compatible endpoint: explore "
            "trajectories, summarise them into tau2 tasks, judge the tasks. Each stage resumes where a run stopped.")

    def add_arguments(self, parser):
        parser.add_argument("--stage", choices=tuple(UNITS), required=True)
        parser.add_argument("--domain", choices=DOMAINS, required=True)
        parser.add_argument("--base-url", required=True)
        parser.add_argument("--model", required=True)
        parser.add_argument("--api-key-env", help="the environment variable that holds the endpoint's API key")
        parser.add_argument("--out", required=True, help="the folder of the stages' files")
        parser.add_argument("--n", type=int, help="explore: trajectories to try (default 10); "
                                                  "summarise, judge: only the first N records")
        parser.add_argument("--seed", type=int, default=0, help="explore: draws users and tool samples")
        parser.add_argument("--tools", type=int, default=10, help="explore: tools offered per trajectory")
        parser.add_argument("--steps", type=int, default=12, help="explore: tool calls per trajectory")
        parser.add_argument("--threshold", type=float, default=llm_stages.DEFAULT_THRESHOLD,
                            help="judge: the overall score a task needs to be kept")
        parser.add_argument("--intent", default="general", help=f"summarise, judge: {', '.join(llm_stages.INTENTS)}")

    def handle(self, *args, **o):
        stage = o["stage"]
        try:
            intent = llm_stages.intent_of(o["intent"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for name in ("n", "tools", "steps"):
            if o[name] is not None and o[name] < 1:
                raise CommandError(f"--{name} must be at least 1")
        api_key = ""
        if o["api_key_env"]:
            api_key = os.environ.get(o["api_key_env"], "")
            if not api_key:
                raise CommandError(f"the environment variable {o['api_key_env']} is not set")
        policy = address_policy_from_settings()
        try:
            probe(o["base_url"], o["model"], api_key, policy=policy)
        except EndpointRejected as exc:
            raise CommandError(f"endpoint {o['base_url']}: {exc.message}") from None
        client = EndpointClient(EndpointConfig(o["base_url"], o["model"], api_key, address_policy=policy))
        bar = tqdm(desc=f"{stage} {o['domain']}", unit=UNITS[stage], disable=o["verbosity"] == 0)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            if stage == "explore":
                report = llm_stages.explore(client, o["domain"], o["out"], n=o["n"] or 10, seed=o["seed"], tools=o["tools"],
                                            steps=o["steps"], progress=progress)
            elif stage == "summarise":
                report = llm_stages.summarise(client, o["domain"], o["out"], intent=intent, n=o["n"], progress=progress)
            else:
                report = llm_stages.judge(client, o["domain"], o["out"], intent=intent, n=o["n"], threshold=o["threshold"],
                                          progress=progress)
        except EndpointError as exc:
            raise CommandError(f"endpoint {o['base_url']}: {exc}; finished records are kept, run again to resume") from None
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
            client.close()
        self.stdout.write("\n".join(report.lines()))
