"""The tool-use family (Trajectory2Task): generated tau2-format tasks on tau2's retail and airline
environments, played by the scripted user and graded by the tau2 grader, scored with pass^k.

Everything but the user is the tau2 family's (``evaluation.tau2.evaluator``): instances, environments, the
grader (with its REFUSAL component for the generated infeasible tasks), the stored verdict and pass^k. The
scripted user is deterministic and needs no endpoint, so a benchmark of this kind needs no simulator set.
"""

from __future__ import annotations

from typing import Any

from evaluation.base import Instance, Outcome
from evaluation.client import EndpointClient
from evaluation.metrics.tool_use import protocol_counts
from evaluation.tau2.environment import write_tools
from evaluation.tau2.episode import run_trial
from evaluation.tau2.evaluator import TaskEpisodeEvaluator, grade_metrics, verdict
from evaluation.tool_use.simulator import ScriptedUserSimulator

DEFAULTS: dict[str, Any] = {"max_turns": 16, "max_steps": 40, "max_errors": 5}


class ToolUseEvaluator(TaskEpisodeEvaluator):
    """Config: ``max_turns`` (user messages), ``max_steps`` (agent calls), ``max_errors`` (tool errors before
    an episode stops)."""

    kind = "tool_use"
    prompt_version = "t2t-2"
    needs_simulator = False

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__({**DEFAULTS, **(config or {})})

    def calls_per_item(self) -> int:
        return int(self.config["max_steps"])

    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        grader, task = self.graded_task(client, instance)
        gold = grader.gold_state(task)
        writes = write_tools(grader.domain)
        user = ScriptedUserSimulator(task, initial_hash=gold.initial_hash, goal_hash=gold.hash, is_write=writes.__contains__,
                                     max_turns=int(self.config["max_turns"]))
        result = run_trial(client, grader, task, user, **self.episode_options())
        episode, grade = result.episode, result.grade
        return episode.outcome(verdict(grade, episode.stop_reason),
                               {**grade_metrics(grade), **protocol_counts(episode.messages, writes.__contains__)})
