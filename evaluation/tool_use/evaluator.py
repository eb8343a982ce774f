"""The tool-use family (Trajectory2Task): episodes against a simulated user, scored with pass^k."""

from __future__ import annotations

from typing import Any, ClassVar

from datasets.tool_use.env import ToolEnv
from datasets.tool_use.pipeline import SCENARIOS
from evaluation.base import Evaluator, Instance, MetricSpec, Outcome, ResultRow, ScoreValue
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.netguard import AddressPolicy
from evaluation.metrics.tool_use import pass_hat_k, pass_hat_k_ci, protocol_counts
from evaluation.tool_use.runner import run_episode
from evaluation.tool_use.simulator import LLMUserSimulator, ScriptedUserSimulator, UserSimulator
from evaluation.tool_use.verify import verify_rollout

MAX_K = 4
DEFAULTS: dict[str, Any] = {"simulator": "scripted", "max_turns": 10, "max_steps": 40, "max_errors": 5}


class ToolUseEvaluator(Evaluator):
    """Config: ``simulator`` ("scripted" or "llm"), ``user_endpoint`` (for "llm": base_url, model and
    optionally api_key and params), ``max_turns``, ``max_steps``, ``max_errors``."""

    kind = "tool_use"
    scenarios: ClassVar[tuple[str, ...]] = SCENARIOS
    prompt_version = "t2t-1"
    default_trials = 4
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
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

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__({**DEFAULTS, **(config or {})})
        if self.config["simulator"] not in ("scripted", "llm"):
            raise ValueError(f"unknown simulator '{self.config['simulator']}' (use 'scripted' or 'llm')")
        if self.config["simulator"] == "llm" and not (self.config.get("user_endpoint") or {}).get("base_url"):
            raise ValueError("the llm simulator needs 'user_endpoint' with a base_url and model")

    def calls_per_item(self) -> int:
        # The agent's steps, plus one simulator call per turn when the user is an LLM.
        return int(self.config["max_steps"]) + (int(self.config["max_turns"]) if self.config["simulator"] == "llm" else 0)

    def _simulator(self, instance: Instance, scenario: str, address_policy: AddressPolicy) -> UserSimulator:
        if self.config["simulator"] == "llm":
            # The simulator's endpoint is held to the same address rules as the model's.
            endpoint = EndpointConfig(**self.config["user_endpoint"], address_policy=address_policy)
            return LLMUserSimulator(EndpointClient(endpoint), instance.input, max_turns=self.config["max_turns"])
        return ScriptedUserSimulator(instance.input, instance.reference, scenario, max_turns=self.config["max_turns"])

    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        task = instance.input
        env = ToolEnv.fresh(task["domain"], task["db_seed"])
        if env.hash() != task["initial_db_hash"]:
            raise ValueError(f"task {task['task_id']}: the {task['domain']} database for seed {task['db_seed']} is not the one "
                             "the task was generated on; regenerate the tasks")
        writes = {t.name for t in env.domain.write_tools}
        simulator = self._simulator(instance, scenario, client.config.address_policy)
        try:
            episode = run_episode(client, env, simulator, max_steps=self.config["max_steps"], max_errors=self.config["max_errors"])
        finally:
            if isinstance(simulator, LLMUserSimulator):
                simulator.client.close()
        verdict = verify_rollout(task["domain"], task["db_seed"], episode.final_db, episode.agent_texts(), instance.reference)
        return episode.outcome(
            {**verdict.as_prediction(), "final_db_hash": env.hash(), "stop_reason": episode.stop_reason},
            {"success": float(verdict.success), **protocol_counts(episode.messages, lambda name: name in writes)},
        )

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
