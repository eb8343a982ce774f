"""One tool-use episode: the model talks to a simulated user and acts on a database copy through tools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from evaluation.base import Outcome
from evaluation.client import EndpointClient
from evaluation.tau2.environment import DB
from evaluation.tool_use.calls import CallResult
from evaluation.tool_use.simulator import UserSimulator

# A reply with more calls than this is answered with errors for the rest: it is not a plan, it is a loop.
MAX_CALLS_PER_MESSAGE = 8


class EpisodeEnv(Protocol):
    """What an episode needs of an environment (``evaluation.tau2.environment.Tau2Environment``)."""

    @property
    def db(self) -> DB: ...

    @property
    def policy(self) -> str: ...

    def tool_schemas(self) -> list[dict[str, Any]]: ...

    def db_hash(self) -> str: ...

    def call(self, name: str, arguments: str | dict[str, Any]) -> CallResult: ...


@dataclass
class Episode:
    messages: list[dict[str, Any]]  # the whole transcript: system, user, assistant, tool messages
    final_db: DB
    stop_reason: str  # "user_stop", "max_turns", "max_steps" or "max_errors"
    turns: int = 0  # agent messages sent to the user
    steps: int = 0  # model calls
    tool_calls: int = 0
    tool_errors: int = 0  # calls answered with an error, whatever the cause
    invalid_tool_calls: int = 0  # of which: unknown tool or malformed arguments
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    # The final database's canonical hash; the environment keeps it between writes, so grading need not
    # hash a 3 MB database again.
    final_db_hash: str = ""

    def outcome(self, prediction: dict[str, Any], metrics: dict[str, float]) -> Outcome:
        """The episode as the engine stores it: its verdict, the family's metrics next to the episode's
        counts, the transcript and the usage."""
        counts = {"turns": float(self.turns), "tool_calls": float(self.tool_calls), "tool_errors": float(self.tool_errors),
                  "invalid_tool_calls": float(self.invalid_tool_calls)}
        return Outcome(prediction=prediction, metrics={**counts, **metrics}, transcript=self.messages,
                       prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens, latency_ms=self.latency_ms)

    def agent_texts(self) -> list[str]:
        return [str(m.get("content") or "") for m in self.messages if m.get("role") == "assistant" and m.get("content")]


def run_episode(client: EndpointClient, env: EpisodeEnv, simulator: UserSimulator, *, max_steps: int = 40,
                max_errors: int = 5, **params: Any) -> Episode:
    """Run until the user stops, or a bound is hit. ``EndpointError`` propagates to the caller."""
    tools = env.tool_schemas()
    episode = Episode([{"role": "system", "content": env.policy}, {"role": "user", "content": simulator.opening()}], env.db, "")
    while True:
        if episode.steps >= max_steps:
            episode.stop_reason = "max_steps"
            episode.final_db_hash = env.db_hash()
            return episode
        result = client.chat(episode.messages, tools=tools, **params)
        episode.steps += 1
        episode.prompt_tokens += result.prompt_tokens
        episode.completion_tokens += result.completion_tokens
        episode.latency_ms += result.latency_ms
        message = {"role": "assistant", "content": result.message.get("content") or None}
        if result.tool_calls:
            message["tool_calls"] = result.tool_calls
        episode.messages.append(message)

        if result.tool_calls:
            for i, call in enumerate(result.tool_calls):
                function = call.get("function") or {}
                if i < MAX_CALLS_PER_MESSAGE:
                    outcome = env.call(str(function.get("name") or ""), function.get("arguments") or "")
                    output, status = outcome.output, outcome.status
                else:
                    output, status = f"Error: at most {MAX_CALLS_PER_MESSAGE} tool calls per message", "invalid"
                episode.tool_calls += 1
                episode.tool_errors += status != "ok"
                episode.invalid_tool_calls += status == "invalid"
                episode.messages.append({"role": "tool", "tool_call_id": call.get("id") or f"call_{i}", "content": output})
            if episode.tool_errors >= max_errors:
                episode.stop_reason = "max_errors"
                episode.final_db_hash = env.db_hash()
                return episode
            continue

        episode.turns += 1
        reply = simulator.reply(episode.messages, env.db_hash())
        episode.messages.append({"role": "user", "content": reply})
        if any(marker in reply for marker in simulator.stop_markers):
            at_limit = sum(m["role"] == "user" for m in episode.messages) > simulator.max_turns
            episode.stop_reason = "max_turns" if at_limit else "user_stop"
            episode.final_db_hash = env.db_hash()
            return episode
