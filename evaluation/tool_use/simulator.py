"""User simulators for tool-use episodes (DESIGN §1.2).

The scripted simulator is the default: it reads the task (its script and expected end state) and the live
database hash, and derives everything else from the transcript, so the same transcript always gets the
same reply. The LLM simulator plays the same user through any chat endpoint.

The scripted user is fair: how it reacts to an agent message depends on the scenario only through that
scenario's own scripted event (the withheld fact of ``ambiguous``, the switch of ``changing``). A refusal
meets the same insistence and a confirmation request the same "yes" in every task, so an agent cannot
learn from the user's answers which tasks are infeasible; a withheld fact comes out when it is asked for in
natural words, never to a question that asks for everything at once.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

from datasets.tool_use.domain import render_value
from datasets.tool_use.pipeline import STOP
from evaluation.client import EndpointClient
from evaluation.tool_use.verify import contains, normalise

# The user's fixed lines: the same in every task, whatever its scenario.
CONFIRM = "Yes, please go ahead."
INSIST = "I really need this done. Can't you make an exception just this once?"
ACCEPT = f"I understand, thank you for explaining. {STOP}"
DONE = f"Thank you, that's all I needed. {STOP}"

_CONFIRMATION = re.compile(
    r"\b(confirm|proceed|go ahead|shall i|should i|do you want me to|would you like me to|want me to|"
    r"is that (right|correct|ok|okay)|does that (look|sound) (right|good|ok|okay)|ok to|okay to|may i|can i go ahead)\b")
_REFUSAL = re.compile(
    r"\b(cannot|can ?not|can't|unable|not able to|not be able|not (be )?allowed|not (be )?possible|not (be )?permitted|won't be able|"
    r"unfortunately|i'm afraid|i am afraid|not eligible|no longer eligible)\b")
_ASKING = re.compile(r"\b(please (tell|provide|share|let me know|specify)|let me know|could you (tell|provide|share|specify))\b")

# Natural words for the facts a task may withhold, by tool parameter (tau2's names and the bundled
# domains'). A question about a fact names one of its nouns ("Which of your orders ...?").
SLOT_NOUNS: dict[str, tuple[str, ...]] = {
    "order_id": ("order",),
    "item_id": ("item", "product", "article"),
    "item_ids": ("item", "product", "article"),
    "new_item_id": ("new item", "replacement", "variant", "option", "instead"),
    "new_item_ids": ("new item", "replacement", "variant", "option", "instead"),
    "payment_method_id": ("payment method", "card", "gift card", "paypal", "pay", "payment"),
    "refund_method_id": ("refund", "payment method", "card", "gift card", "paypal"),
    "from_account_id": ("account", "source", "from"),
    "to_account_id": ("account", "destination", "into", "receiving"),
    "account_id": ("account",),
    "card_id": ("card",),
    "transaction_id": ("transaction", "charge", "purchase", "payment"),
    "reservation_id": ("reservation", "booking", "trip"),
}
# Kinds of record a question can ask about. A question naming three or more kinds at once is a
# shotgun ("which order, which item, which card, which account ...") and reveals nothing.
ENTITY_KINDS: dict[str, tuple[str, ...]] = {
    "order": ("order",),
    "item": ("item", "product", "article", "variant"),
    "payment": ("payment method", "card", "gift card", "paypal", "refund", "credit card"),
    "account": ("account",),
    "transaction": ("transaction", "charge", "purchase"),
    "reservation": ("reservation", "booking", "trip", "flight"),
    "address": ("address",),
    "amount": ("amount", "how much", "limit"),
    "reason": ("reason", "why"),
    "passenger": ("passenger",),
}
SHOTGUN_KINDS = 3


@lru_cache(maxsize=256)
def _noun_pattern(noun: str) -> re.Pattern[str]:
    # Whole words, plural allowed: "orders" asks about an order, "preorder" does not.
    return re.compile(r"(?<![\w])" + re.escape(normalise(noun)) + r"(s|es)?(?![\w])")


def mentions(text: str, nouns: tuple[str, ...] | list[str]) -> bool:
    """Whether normalised ``text`` names any of ``nouns`` as whole words."""
    return any(_noun_pattern(noun).search(text) for noun in nouns)


def entity_kinds(text: str) -> set[str]:
    normal = normalise(text)
    return {kind for kind, nouns in ENTITY_KINDS.items() if mentions(normal, nouns)}


class UserSimulator(Protocol):
    max_turns: int
    stop_markers: tuple[str, ...]  # a reply holding any of them ends the episode

    def opening(self) -> str: ...

    def reply(self, transcript: list[dict[str, Any]], db_hash: str) -> str: ...


def _said_by_agent(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and not message.get("tool_calls")


def user_turns(transcript: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("content") or "") for m in transcript if m.get("role") == "user"]


def _plain(text: str) -> str:
    return text.casefold().replace("’", "'")


def is_question(text: str) -> bool:
    return "?" in text or _ASKING.search(_plain(text)) is not None


def is_confirmation_request(text: str) -> bool:
    """ "Would you like me to …?", "Shall I …?", "Is that right?", "Can you confirm …", "Please confirm (yes/no)." """
    plain = _plain(text)
    return _CONFIRMATION.search(plain) is not None and ("?" in text or "confirm" in plain)


def is_refusal(text: str) -> bool:
    return _REFUSAL.search(_plain(text)) is not None


def asks_for(text: str, slot: str, fallback: list[str]) -> bool:
    """A question that asks for the fact of ``slot`` in natural words, and not for everything at once."""
    if not is_question(text) or len(entity_kinds(text)) >= SHOTGUN_KINDS:
        return False
    return mentions(normalise(text), SLOT_NOUNS.get(slot) or tuple(fallback))


def proposes(text: str, action: dict[str, Any], user_id: str) -> bool:
    """Whether the agent's message names the action's target: every identifier-like value it takes.

    Values with a digit (ids, amounts, addresses) say which record changes and how; free text such as a
    reason is left out, and so is the customer's own id, which a proposal need not repeat.
    """
    values: list[str] = []
    for value in action["arguments"].values():
        for item in value if isinstance(value, list) else [value]:
            rendered = render_value(item)
            if rendered != user_id and any(ch.isdigit() for ch in rendered):
                values.append(rendered)
    return bool(values) and all(contains(text, value) for value in values)


class ScriptedUserSimulator:
    """The deterministic user. Rules, first match wins, on the agent's latest message ``m``:

    1. the database is in the goal state and differs from the initial one -> done (stop);
    2. `changing`, before the switch: the agent has acted (the database changed) or ``m`` concretely
       proposes the first goal -> switch to the final goal (the scenario's event);
    3. ``m`` refuses -> insist once, then accept (stop) — in every scenario;
    4. `ambiguous`: ``m`` asks, in natural words, for a withheld fact not yet given -> reveal it (the
       scenario's event); a question naming three or more kinds of record reveals nothing;
    5. ``m`` asks for confirmation -> "yes";
    6. the database changed and ``m`` asks nothing -> the user believes it is done (stop);
    7. otherwise (other questions, small talk, stalling) -> restate the current goal.
    """

    def __init__(self, task_input: dict[str, Any], reference: dict[str, Any], scenario: str, max_turns: int = 10):
        self.script = task_input["script"]
        self.user_id = str((task_input.get("user") or {}).get("id") or "")
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
        script = self.script
        switch = script.get("switch") or ""
        switched = bool(switch) and switch in said
        changed = db_hash != self.initial_hash

        if changed and db_hash == self.goal_hash:
            return DONE
        if self.scenario == "changing" and switch and not switched and (changed or proposes(agent, script["first_goal"], self.user_id)):
            return switch
        if is_refusal(agent):
            return ACCEPT if INSIST in said else INSIST
        if self.scenario == "ambiguous":
            for fact in script.get("reveal") or []:
                if fact["reply"] not in said and asks_for(agent, fact["slot"], fact.get("keywords") or []):
                    return fact["reply"]
        if is_confirmation_request(agent):
            return CONFIRM
        if changed and not is_question(agent):
            return DONE
        return switch if switched else script["restatement"]


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
