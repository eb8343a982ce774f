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
from evaluation.base import SIMULATOR_ERROR, Evaluator, Instance, MetricSpec, Outcome, ResultRow, ScoreValue
from evaluation.client import EndpointClient
from evaluation.metrics.tool_use import pass_hat_k, pass_hat_k_ci
from evaluation.netguard import UNRESTRICTED, AddressPolicy
from evaluation.tau2.environment import load_environment
from evaluation.tau2.episode import run_trial
from evaluation.tau2.grading import Grade, Grader, NLJudge
from evaluation.tau2.replay import read_domain_tasks
from evaluation.tau2.tasks import Task
from evaluation.tau2.user import LLMConfig, LLMUserSimulator, SimulatorError

DEFAULTS: dict[str, Any] = {"max_turns": 20, "max_steps": 40, "max_errors": 10, "judge": None}
MAX_K = 4
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("pass_1", "pass^1", headline=True, description="Share of tasks solved in a trial (mean over trials)."),
    *(MetricSpec(f"pass_{k}", f"pass^{k}", description=f"Chance that {k} trials of a task all succeed: mean of C(c,{k})/C(n,{k}).")
      for k in range(2, MAX_K + 1)),
    MetricSpec("avg_turns", "Avg. turns", higher_is_better=False, unit="number", description="Agent messages to the user per episode."),
    MetricSpec("tool_error_rate", "Tool error rate", higher_is_better=False, description="Tool calls answered with an error."),
    MetricSpec("confirmed_write_rate", "Confirmed writes",
               description="Writes made right after the user said yes to the agent's confirmation request (the policy's rule)."),
    MetricSpec("asked_before_acting", "Asked before acting",
               description="Ambiguous tasks: episodes with a write in which the agent asked the user a question first."),
)


def role_config(value: dict[str, Any]) -> tuple[LLMConfig, str]:
    """An LLM role of the config (``{base_url, model, params, prompt_version, api_key}``) and its key."""
    fields = {k: v for k, v in value.items() if k != "api_key"}
    return LLMConfig.from_snapshot(fields), str(value.get("api_key") or "")


class TaskEpisodeEvaluator(Evaluator):
    """What both tool-use families share: one instance is one tau2-format task (``datasets.tau2.bundle``), run
    as an episode on tau2's environment of its domain, graded by the domain's ``Grader`` and scored with
    pass^k. Subclasses choose the user (``run``); config ``max_steps`` (agent calls) and ``max_errors`` (tool
    errors before an episode stops)."""

    scenarios: ClassVar[tuple[str, ...]] = SCENARIOS
    default_trials = 4
    metrics = METRICS

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._graders: dict[str, Grader] = {}
        self._db_hashes: dict[str, str] = {}
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def judge(self, address_policy: AddressPolicy) -> NLJudge | None:
        """The NL-assertion judge the graders use (none by default)."""
        return None

    def grader(self, domain: str, address_policy: AddressPolicy = UNRESTRICTED) -> Grader:
        """One grader per domain, shared by the threads of a batch (it caches each task's gold replay).

        The judge's endpoint is held to the same address policy as the agent's (the worker's)."""
        with self._lock:
            grader = self._graders.get(domain)
            if grader is None:
                grader = self._graders[domain] = Grader(domain, judge=self.judge(address_policy))
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

    def graded_task(self, client: EndpointClient, instance: Instance) -> tuple[Grader, Task]:
        """The instance's grader and task, once its database is checked to be the one the service hosts."""
        domain = instance.input["domain"]
        grader = self.grader(domain, client.config.address_policy)
        if instance.input.get("db_hash") not in (None, self._db_hashes[domain]):
            raise ValueError(f"task {instance.key}: the hosted {domain} database is not the one the task was imported on")
        return grader, self.task(instance)

    def episode_options(self) -> dict[str, int]:
        return {"max_steps": int(self.config["max_steps"]), "max_errors": int(self.config["max_errors"])}

    def score(self, scenario: str, rows: list[ResultRow]) -> list[ScoreValue]:
        if not rows:
            return []
        trials: dict[str, list[bool]] = {}
        for row in sorted(rows, key=lambda r: (r.instance.key, r.trial)):
            # An errored row is a failed trial: it stays in the denominator.
            ok = not row.error_code and bool(row.metrics.get("success"))
            trials.setdefault(row.instance.key, []).append(ok)
        scores = []
        for k in range(1, min(MAX_K, min(len(t) for t in trials.values())) + 1):
            low, high = pass_hat_k_ci(trials, k)
            scores.append(ScoreValue(scenario, f"pass_{k}", pass_hat_k(trials, k), low, high, len(trials)))
        answered = [r for r in rows if not r.error_code]
        if answered:
            calls = sum(r.metrics.get("tool_calls", 0.0) for r in answered)
            errors = sum(r.metrics.get("tool_errors", 0.0) for r in answered)
            scores.append(ScoreValue(scenario, "avg_turns", sum(r.metrics.get("turns", 0.0) for r in answered) / len(answered), n=len(answered)))
            scores.append(ScoreValue(scenario, "tool_error_rate", errors / calls if calls else 0.0, n=len(answered)))
            writes = sum(r.metrics.get("writes", 0.0) for r in answered)
            if writes:
                confirmed = sum(r.metrics.get("confirmed_writes", 0.0) for r in answered)
                scores.append(ScoreValue(scenario, "confirmed_write_rate", confirmed / writes, n=len(answered)))
            acted = [r for r in answered if r.metrics.get("acted")]
            if scenario == "ambiguous" and acted:
                asked = sum(r.metrics.get("asked_first", 0.0) for r in acted)
                scores.append(ScoreValue(scenario, "asked_before_acting", asked / len(acted), n=len(acted)))
        return scores


class Tau2Evaluator(TaskEpisodeEvaluator):
    """The tau2 family: the user is an LLM. Config: ``user`` and ``judge`` (``LLMConfig`` snapshots, each with
    an optional ``api_key``; the judge only for tasks graded on NL assertions), ``max_turns`` (user
    messages), ``max_steps``, ``max_errors``."""

    kind = "tau2"
    prompt_version = "tau2-agent-1"
    needs_simulator = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__({**DEFAULTS, **(config or {})})
        if not (self.config.get("user") or {}).get("base_url"):
            raise ValueError("the tau2 family needs a user simulator: 'user' with a base_url and model")
        self.user, self._user_key = role_config(self.config["user"])
        self.judge_role: tuple[LLMConfig, str] | None = role_config(self.config["judge"]) if self.config.get("judge") else None

    def calls_per_item(self) -> int:
        # The agent's steps plus one simulator call per user turn (the judge's one call fits in the margin).
        return int(self.config["max_steps"]) + int(self.config["max_turns"])

    def judge(self, address_policy: AddressPolicy) -> NLJudge | None:
        if self.judge_role is None:
            return None
        config, key = self.judge_role
        return NLJudge(EndpointClient(config.endpoint(key, address_policy=address_policy)), config)

    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        grader, task = self.graded_task(client, instance)
        if "NL_ASSERTION" in task.reward_basis and task.evaluation_criteria and task.evaluation_criteria.nl_assertions and self.judge_role is None:
            return Outcome(error_code=SIMULATOR_ERROR, error=f"task {instance.key} is graded on NL assertions and the benchmark has no judge configured")
        with EndpointClient(self.user.endpoint(self._user_key, address_policy=client.config.address_policy)) as user_client:
            simulator = LLMUserSimulator(user_client, task, self.user, max_turns=int(self.config["max_turns"]))
            try:
                result = run_trial(client, grader, task, simulator, **self.episode_options())
            except SimulatorError as exc:
                return Outcome(error_code=SIMULATOR_ERROR, error=str(exc),
                               prompt_tokens=simulator.prompt_tokens, completion_tokens=simulator.completion_tokens)
        episode, grade = result.episode, result.grade
        return episode.outcome(verdict(grade, episode.stop_reason), grade_metrics(grade))

    def score(self, scenario: str, rows: list[ResultRow]) -> list[ScoreValue]:
        # A trial lost to the simulator or the judge says nothing about the agent: it is not counted.
        return super().score(scenario, [r for r in rows if r.error_code != SIMULATOR_ERROR])


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
