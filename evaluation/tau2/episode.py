"""One trial of a tau2 task: the task's initial state, the shared tool-use episode loop, then the grade."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.client import EndpointClient
from evaluation.tau2.grading import Grade, Grader
from evaluation.tau2.replay import prepared_environment
from evaluation.tau2.tasks import Task
from evaluation.tool_use.runner import Episode, run_episode
from evaluation.tool_use.simulator import UserSimulator


@dataclass
class Trial:
    episode: Episode
    grade: Grade


def run_tau2_episode(agent: EndpointClient, domain: str, task: Task, user: UserSimulator, *,
                     db_path: str | Path | None = None, max_steps: int = 40, max_errors: int = 5, **params: Any) -> Episode:
    """Run the agent on the task's prepared database (initial data, initialization actions and the tool
    calls of its message history applied) with ``user`` playing the customer."""
    if task.initial_state is not None and task.initial_state.message_history:
        # The shared loop opens with the simulator's first line; resuming a recorded conversation is not supported.
        raise ValueError(f"task '{task.id}': initial_state.message_history is not supported by the episode runner")
    env = prepared_environment(domain, task, db_path)
    return run_episode(agent, env, user, max_steps=max_steps, max_errors=max_errors, **params)


def run_trial(agent: EndpointClient, grader: Grader, task: Task, user: UserSimulator, **options: Any) -> Trial:
    """An episode and its grade. ``EndpointError`` (the agent's endpoint) and ``SimulatorError`` (the user's
    or the judge's) propagate: the caller records the first against the agent, the second as an evaluation error."""
    episode = run_tau2_episode(agent, grader.domain, task, user, db_path=grader.db_path, **options)
    return Trial(episode, grader.grade(task, episode.messages, episode.final_db, episode.stop_reason, episode.final_db_hash))
