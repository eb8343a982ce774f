"""The LLM user simulator of tau2-bench, over any OpenAI-compatible endpoint.

The simulator's system prompt is the simulation guidelines below (tau2's rules in our words, with its
three end markers) followed by the task's scenario (persona and instructions, in tau2's layout). The
conversation is shown to the simulator with the roles flipped: the agent's words are its "user" turns,
its own earlier lines are its "assistant" turns; the agent's tool calls and results stay hidden, as in
tau2. As in tau2 the agent speaks first, with a fixed greeting.

A simulator (or judge) endpoint that fails after the client's bounded retries raises ``SimulatorError``:
that trial is an evaluation error, never counted against the agent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.client import EndpointClient, EndpointConfig, EndpointError
from evaluation.tau2.tasks import Task
from evaluation.tool_use.simulator import STOP, user_turns

TRANSFER = "###TRANSFER###"
OUT_OF_SCOPE = "###OUT-OF-SCOPE###"
STOP_MARKERS = (STOP, TRANSFER, OUT_OF_SCOPE)
AGENT_GREETING = "Hi! How can I help you today?"
PROMPT_VERSION = "tau2-user-1"

SIMULATION_GUIDELINES = f"""# How to play the customer
You play a customer who contacts a customer-service agent. Make the conversation realistic while you
follow the scenario below exactly.

## Rules
- Write one message at a time: only the customer's next message, in a natural tone.
- Follow the scenario's instructions strictly.
- Never invent facts. Anything the scenario does not give you is unknown to you.
- Do not copy the instructions word for word; say things in your own words.
- Reveal information step by step: give a detail only when the agent asks for it.

## Ending the conversation
- Keep going until your task is complete; do not stop early. The agent agreeing to do something is not
  the same as it being done: wait until the agent confirms that it has actually done it.
- Before you stop, check that every request, question and task in your instructions has been handled,
  not just some of them.
- When your goal is met, reply with {STOP} to end the conversation.
- If you are transferred to another agent, reply with {TRANSFER}.
- If the scenario does not give you enough information to go on, reply with {OUT_OF_SCOPE}."""


class SimulatorError(Exception):
    """The user simulator's or the judge's endpoint failed (after retries) or answered unusably.

    ``role`` is "user" or "judge"; ``code`` is the endpoint fault's code (``EndpointError.code``) or
    ``bad_reply``.
    """

    def __init__(self, role: str, code: str, message: str):
        super().__init__(f"{role} simulator endpoint: {message}" if role == "user" else f"{role} endpoint: {message}")
        self.role = role
        self.code = code


@dataclass(frozen=True)
class LLMConfig:
    """An LLM that plays a role in evaluation (the user, the judge): set by the benchmark's maintainers and
    snapshot with every submission. The API key is not part of it; it is passed when connecting."""

    base_url: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    prompt_version: str = PROMPT_VERSION

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> "LLMConfig":
        return cls(**data)

    def endpoint(self, api_key: str = "", **options: Any) -> EndpointConfig:
        return EndpointConfig(base_url=self.base_url, model=self.model, api_key=api_key, params=dict(self.params), **options)


def system_prompt(task: Task) -> str:
    return f"{SIMULATION_GUIDELINES}\n\n<scenario>\n{task.user_scenario}\n</scenario>"


def is_stop(message: str) -> bool:
    return any(marker in message for marker in STOP_MARKERS)


def flipped_conversation(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the simulator sees it: the agent's texts as "user", its own lines as "assistant"."""
    flipped = [{"role": "user", "content": AGENT_GREETING}]
    for message in transcript:
        role = message.get("role")
        if role == "user":
            flipped.append({"role": "assistant", "content": str(message.get("content") or "")})
        elif role == "assistant" and not message.get("tool_calls") and message.get("content"):
            flipped.append({"role": "user", "content": str(message["content"])})
    return flipped


class LLMUserSimulator:
    """tau2's user simulator for one task; fits ``evaluation.tool_use.runner.run_episode``."""

    stop_markers = STOP_MARKERS

    def __init__(self, client: EndpointClient, task: Task, config: LLMConfig, *, max_turns: int = 30):
        self.client = client
        self.task = task
        self.config = config
        self.max_turns = max_turns  # user messages in one episode; at that point the simulator says STOP
        self.system_prompt = system_prompt(task)
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def opening(self) -> str:
        return self._generate([])

    def reply(self, transcript: list[dict[str, Any]], db_hash: str) -> str:
        if len(user_turns(transcript)) >= self.max_turns:
            return STOP
        return self._generate(transcript)

    def _generate(self, transcript: list[dict[str, Any]]) -> str:
        messages = [{"role": "system", "content": self.system_prompt}, *flipped_conversation(transcript)]
        try:
            result = self.client.chat(messages)
        except EndpointError as exc:
            raise SimulatorError("user", exc.code, str(exc)) from exc
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        text = result.content.strip()
        if not text:
            # An empty turn would end or derail the dialogue for a reason that is not the agent's.
            raise SimulatorError("user", "bad_reply", "the simulator sent an empty message")
        return text
