"""The tau2 family: tau2-format tasks run as episodes against an LLM user simulator, scored with pass^k.

One instance is one task (``datasets.tau2.bundle``). The user simulator and the NL-assertion judge are the
benchmark's setting, chosen by its maintainers (``manage.py set_benchmark_simulator``); the submission's
snapshot carries them, so the worker rebuilds this evaluator from the snapshot alone. A trial that dies
because the simulator's or the judge's endpoint failed is an evaluation error (``simulator_error``), not
the agent's failure: it is left out of pass^k and runs again on a re-run. The agent's own endpoint faults
(``EndpointError``) stay the agent's, as in every family.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any, ClassVar

from datasets.tau2.bundle import SCENARIOS, task_json
from evaluation.base import SIMULATOR_ERROR, Evaluator, Instance, Outcome, ResultRow, ScoreValue
from evaluation.client import EndpointClient
from evaluation.netguard import UNRESTRICTED, AddressPolicy
from evaluation.tau2.environment import load_environment
from evaluation.tau2.episode import run_trial
from evaluation.tau2.grading import Grade, Grader, NLJudge
from evaluation.tau2.replay import read_domain_tasks
from evaluation.tau2.tasks import Task
from evaluation.tau2.user import LLMConfig, LLMUserSimulator, SimulatorError
from evaluation.tool_use.evaluator import ToolUseEvaluator

DEFAULTS: dict[str, Any] = {"max_turns": 20, "max_steps": 40, "max_errors": 10, "judge": None}


def role_config(value: dict[str, Any]) -> tuple[LLMConfig, str]:
    """An LLM role of the config (``{base_url, model, params, prompt_version, api_key}``) and its key."""
    fields = {k: v for k, v in value.items() if k != "api_key"}
    return LLMConfig.from_snapshot(fields), str(value.get("api_key") or "")


class Tau2Evaluator(Evaluator):
    """Config: ``user`` and ``judge`` (``LLMConfig`` snapshots, each with an optional ``api_key``; the judge
    only for tasks graded on NL assertions), ``max_turns`` (user messages), ``max_steps`` (agent calls),
    ``max_errors`` (tool errors before an episode stops)."""

    kind = "tau2"
    scenarios: ClassVar[tuple[str, ...]] = SCENARIOS
    prompt_version = "tau2-agent-1"
    default_trials = 4
    needs_simulator = True
    # The tool-use family's schema: pass^1 (headline) .. pass^4, turns and tool errors, computed alike.
    metrics = ToolUseEvaluator.metrics

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__({**DEFAULTS, **(config or {})})
        if not (self.config.get("user") or {}).get("base_url"):
            raise ValueError("the tau2 family needs a user simulator: 'user' with a base_url and model")
        self.user, self._user_key = role_config(self.config["user"])
        self.judge: tuple[LLMConfig, str] | None = role_config(self.config["judge"]) if self.config.get("judge") else None
        self._graders: dict[str, Grader] = {}
        self._db_hashes: dict[str, str] = {}
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def calls_per_item(self) -> int:
        # The agent's steps plus one simulator call per user turn (the judge's one call fits in the margin).
        return int(self.config["max_steps"]) + int(self.config["max_turns"])

    def grader(self, domain: str, address_policy: AddressPolicy = UNRESTRICTED) -> Grader:
        """One grader per domain, shared by the threads of a batch (it caches each task's gold replay).

        The judge's endpoint is held to the same address policy as the agent's (the worker's)."""
        with self._lock:
            grader = self._graders.get(domain)
            if grader is None:
                judge = None
                if self.judge is not None:
                    config, key = self.judge
                    judge = NLJudge(EndpointClient(config.endpoint(key, address_policy=address_policy)), config)
                grader = self._graders[domain] = Grader(domain, judge=judge)
                self._db_hashes[domain] = load_environment(domain).db_hash()
            return grader

    def task(self, instance: Instance) -> Task:
        """The instance's task, read (and checked) once per evaluator."""
        with self._lock:
            cached = self._tasks.get(instance.key)
        if cached is None:
            stream = io.StringIO(json.dumps([task_json(instance.input, instance.reference)]))
            stream.name = f"instance {instance.key}"
            cached = read_domain_tasks(instance.input["domain"], stream)[0]
            with self._lock:
                self._tasks[instance.key] = cached
        return cached

    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        domain = instance.input["domain"]
        grader = self.grader(domain, client.config.address_policy)
        if instance.input.get("db_hash") not in (None, self._db_hashes[domain]):
            raise ValueError(f"task {instance.key}: the hosted {domain} database is not the one the task was imported on")
        task = self.task(instance)
        if "NL_ASSERTION" in task.reward_basis and task.evaluation_criteria and task.evaluation_criteria.nl_assertions and self.judge is None:
            return Outcome(error_code=SIMULATOR_ERROR, error=f"task {instance.key} is graded on NL assertions and the benchmark has no judge configured")
        with EndpointClient(self.user.endpoint(self._user_key, address_policy=client.config.address_policy)) as user_client:
            simulator = LLMUserSimulator(user_client, task, self.user, max_turns=int(self.config["max_turns"]))
            try:
                result = run_trial(client, grader, task, simulator,
                                   max_steps=int(self.config["max_steps"]), max_errors=int(self.config["max_errors"]))
            except SimulatorError as exc:
                return Outcome(error_code=SIMULATOR_ERROR, error=str(exc),
                               prompt_tokens=simulator.prompt_tokens, completion_tokens=simulator.completion_tokens)
        episode, grade = result.episode, result.grade
        return episode.outcome(verdict(grade, episode.stop_reason), grade_metrics(grade))

    def score(self, scenario: str, rows: list[ResultRow]) -> list[ScoreValue]:
        # A trial lost to the simulator or the judge says nothing about the agent: it is not counted. The
        # rest is the tool-use family's pass^k, which reads nothing of the evaluator itself.
        return ToolUseEvaluator.score(self, scenario, [r for r in rows if r.error_code != SIMULATOR_ERROR])  # type: ignore[arg-type]


def grade_metrics(grade: Grade) -> dict[str, float]:
    """The per-instance metrics: success, the reward and each component's value."""
    return {"success": float(grade.reward >= 1.0), "reward": grade.reward,
            **{f"reward_{name.lower()}": component.value for name, component in grade.components.items()}}


def verdict(grade: Grade, stop_reason: str) -> dict[str, Any]:
    """The stored prediction of a trial: the grade with every component's reasons (``public_verdict`` is
    what non-staff see of a hidden split)."""
    return {"success": grade.reward >= 1.0, "stop_reason": stop_reason, **grade.to_json(), "failures": grade.failures()}


def public_verdict(prediction: dict[str, Any]) -> dict[str, Any]:
    """A stored tau2 verdict without anything taken from the reference: each component's value and how many
    reasons it has, never the reasons (they quote gold calls, expected records, information and assertions)."""
    components = {name: {"value": c.get("value"), "hidden_details": len(c.get("details") or [])}
                  for name, c in (prediction.get("components") or {}).items()}
    public = {key: prediction[key] for key in ("success", "stop_reason", "reward", "reward_basis", "note") if key in prediction}
    return {**public, "components": components}
