"""User simulators for tool-use episodes (DESIGN §1.2).

The scripted simulator is the default: it reads the task (its script and expected end state) and the live
database hash, and derives everything else from the transcript, so the same transcript always gets the
same reply. The LLM simulator plays the same user through any chat endpoint.
"""

from __future__ import annotations

from typing import Any, Protocol

from datasets.tool_use.pipeline import STOP
from evaluation.client import EndpointClient
from evaluation.tool_use.verify import normalise

CONFIRM_WORDS = ("confirm", "proceed", "go ahead", "shall i", "should i", "do you want me to")
REFUSAL_WORDS = ("cannot", "can't", "can not", "unable", "not able to", "not allowed", "not possible", "not permitted", "won't be able")


class UserSimulator(Protocol):
    max_turns: int
    stop_markers: tuple[str, ...]  # a reply holding any of them ends the episode

    def opening(self) -> str: ...

    def reply(self, transcript: list[dict[str, Any]], db_hash: str) -> str: ...


def _said_by_agent(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and not message.get("tool_calls")


def user_turns(transcript: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("content") or "") for m in transcript if m.get("role") == "user"]


def is_question(text: str) -> bool:
    return "?" in text


def is_confirmation_request(text: str) -> bool:
    lowered = text.casefold()
    return is_question(text) and any(w in lowered for w in CONFIRM_WORDS)


def is_refusal(text: str) -> bool:
    lowered = text.casefold().replace("’", "'")
    return any(w in lowered for w in REFUSAL_WORDS)


class ScriptedUserSimulator:
    """The deterministic user. Rules, first match wins (on the agent's latest message):

    1. the database is in the goal state (not for infeasible tasks, whose goal is "unchanged") -> done;
    2. ambiguous: it asks a question naming a withheld fact ("which order", "order id") -> reveal the fact;
    3. infeasible: it refuses -> insist once, then accept (stop);
    4. it asks for confirmation -> "yes", except the first time in `changing` -> switch goals;
    5. changing, before the switch, a statement (the agent acted without asking) -> switch goals;
    6. the database changed and the agent is not asking anything -> the user believes it is done (stop);
    7. otherwise (other questions, small talk) -> restate the current goal.
    """

    def __init__(self, task_input: dict[str, Any], reference: dict[str, Any], scenario: str, max_turns: int = 10):
        self.script = task_input["script"]
        self.initial_hash = task_input["initial_db_hash"]
        self.goal_hash = reference["expected_db_hash"]
        self.scenario = scenario
        self.max_turns = max_turns
        self.stop_markers = (STOP,)

    def opening(self) -> str:
        return self.script["opening"]

    def reply(self, transcript: list[dict[str, Any]], db_hash: str) -> str:
        said = user_turns(transcript)
        if len(said) >= self.max_turns:
            return STOP
        agent = next((str(m.get("content") or "") for m in reversed(transcript) if _said_by_agent(m)), "")
        text = normalise(agent)
        script = self.script
        switched = bool(script["switch"]) and script["switch"] in said

        if self.scenario != "infeasible" and db_hash == self.goal_hash:
            return script["done"]
        if self.scenario == "ambiguous" and is_question(agent):
            for fact in script["reveal"]:
                if fact["reply"] not in said and any(normalise(k) in text for k in fact["keywords"]):
                    return fact["reply"]
        if self.scenario == "infeasible" and is_refusal(agent):
            return script["accept"] if script["insist"] in said else script["insist"]
        if self.scenario == "changing" and not switched and (is_confirmation_request(agent) or not is_question(agent)):
            return script["switch"]
        if is_confirmation_request(agent):
            return script["confirm"]
        if db_hash != self.initial_hash and not is_question(agent):
            return script["done"]
        return script["switch"] if switched else script["restatement"]


class LLMUserSimulator:
    """Plays the task's user through a chat endpoint; the conversation is shown with roles swapped."""

    def __init__(self, client: EndpointClient, task_input: dict[str, Any], max_turns: int = 10):
        self.client = client
        self.task_input = task_input
        self.max_turns = max_turns
        self.stop_markers = (STOP,)
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def opening(self) -> str:
        return self.task_input["script"]["opening"]

    def system_prompt(self) -> str:
        return (
            "You are role-playing a customer talking to a customer-service agent. "
            f"{self.task_input['instruction']}\n"
            "Rules: write only the customer's next message, short and natural. Do not invent facts you were not "
            "given. Answer the agent's questions with the facts above when asked. When your request is done, or "
            f"you have accepted that it cannot be done, end your message with {STOP}."
        )

    def reply(self, transcript: list[dict[str, Any]], db_hash: str) -> str:
        if len(user_turns(transcript)) >= self.max_turns:
            return STOP
        swapped: list[dict[str, Any]] = [{"role": "system", "content": self.system_prompt()}]
        for message in transcript:
            if message.get("role") == "user":
                swapped.append({"role": "assistant", "content": message.get("content") or ""})
            elif _said_by_agent(message):
                swapped.append({"role": "user", "content": message.get("content") or ""})
        result = self.client.chat(swapped)
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        return result.content.strip() or STOP
