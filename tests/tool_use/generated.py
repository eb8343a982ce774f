"""Generated Trajectory2Task tasks for the tool-use tests: the bundled folder when it is there, else a small
generation (once per test process), as instances the way the bundle stores them, and the agents that play
them over HTTP."""

from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from datasets.base import Instance
from datasets.tau2.bundle import to_instance
from datasets.tool_use.generator import SCENARIOS, SCRIPT_KEY, generate_tasks, get_domain
from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.tau2.environment import load_environment, write_tools
from evaluation.tau2.grading import Grader
from evaluation.tau2.replay import read_domain_tasks
from evaluation.tau2.tasks import Task
from evaluation.tool_use.simulator import ScriptedUserSimulator
from tests.user_endpoint import GoldAgentPolicy

DATA_DIR = Path(__file__).resolve().parents[2] / "datasets" / "tool_use" / "data"
Json = dict[str, Any]


@lru_cache(maxsize=None)
def tasks(domain: str) -> dict[str, list[Json]]:
    """Every task of a domain by scenario, sorted by id."""
    folder = DATA_DIR / domain
    if all((folder / f"tasks_{s}.json").is_file() for s in SCENARIOS):
        found = {s: json.loads((folder / f"tasks_{s}.json").read_text(encoding="utf-8")) for s in SCENARIOS}
    else:
        generation = generate_tasks(domain, test_per_scenario=2, seed=7)
        found = {s: [t for split in generation.tasks.values() for t in split[s]] for s in SCENARIOS}
    return {s: sorted(rows, key=lambda t: t["id"]) for s, rows in found.items()}


def pick(domain: str, scenario: str, want=lambda task: True) -> Json:
    return next(t for t in tasks(domain)[scenario] if want(t))


def writes(task: Json) -> int:
    return len(task["evaluation_criteria"]["actions"])


def refusal_line(task: Json) -> str:
    policy = get_domain(task["user_scenario"]["instructions"]["domain"]).policy
    rule = policy.rule(task[SCRIPT_KEY]["refusal_rule"])
    evidence = task[SCRIPT_KEY].get("refusal_evidence") or []
    return f"I'm sorry, I cannot do that. {rule.message} {rule.evidence_phrase.format(evidence[0]) if evidence else ''}".strip()


def instance(task: Json) -> Instance:
    domain = task["user_scenario"]["instructions"]["domain"]
    return to_instance(domain, task["type"], task["id"], task, load_environment(domain).db_hash())


def as_task(task: Json) -> Task:
    return _parsed(json.dumps(task, sort_keys=True))


@lru_cache(maxsize=None)
def _parsed(text: str) -> Task:
    task = json.loads(text)
    stream = io.StringIO(f"[{text}]")
    stream.name = task["id"]
    return read_domain_tasks(task["user_scenario"]["instructions"]["domain"], stream)[0]


@lru_cache(maxsize=None)
def grader(domain: str) -> Grader:
    return Grader(domain)


def simulator(task: Json, max_turns: int = 16) -> ScriptedUserSimulator:
    domain = task["user_scenario"]["instructions"]["domain"]
    parsed = as_task(task)
    gold = grader(domain).gold_state(parsed)
    return ScriptedUserSimulator(parsed, initial_hash=gold.initial_hash, goal_hash=gold.hash,
                                 is_write=write_tools(domain).__contains__, max_turns=max_turns)


class GoldToolUseAgent(GoldAgentPolicy):
    """The agent that knows the answer: the gold calls, then the outputs to tell — and, for an infeasible
    task, the refusal with the rule's reason."""

    def __init__(self, task: Json):
        super().__init__(task["user_scenario"]["instructions"]["domain"], as_task(task))
        self.refusal = refusal_line(task) if task[SCRIPT_KEY].get("refusal_rule") else ""

    def reply(self, messages: list[Json], tools: Any, params: Json) -> Json:
        answer = super().reply(messages, tools, params)
        if self.refusal and answer.get("content"):
            answer["content"] = f"{self.refusal} {answer['content']}"
        return answer


class Served:
    """A policy served over loopback HTTP, with a client for it."""

    def __init__(self, policy: Any):
        self.server = PolicyServer(policy).start_background()
        self.client = EndpointClient(EndpointConfig(self.server.base_url, policy.model_id, max_retries=0))

    def __enter__(self) -> EndpointClient:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.stop()
