"""The scripted user of generated Trajectory2Task tasks (DESIGN §1.2), and what every user simulator offers.

A generated task is a tau2 task with a ``user_script`` (``datasets.tool_use.generator``): the opening, the
request restated, and the scenario's one scripted event — the withheld facts of ``ambiguous`` (``reveal``)
or the new goal of ``changing`` (``switch`` after ``first_goal``). The user reads that script, the hash of
the database the task starts from and of the gold replay's, and the transcript; nothing else, so the same
transcript always gets the same reply.

The user is fair: it never looks at the scenario's name, only at the script's event. A refusal meets the
same insistence and a confirmation request the same "yes" in every task, so an agent cannot learn from
the user's answers which tasks are infeasible; a withheld fact comes out when it is asked for in natural
words, never to a question that asks for everything at once; the new goal comes only once the agent has
proposed the first one concretely (or acted on it).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Iterator, Protocol

from datasets.tool_use.generator import SCRIPT_KEY
from datasets.tool_use.text import contains, normalise, render_value
from evaluation.tau2.tasks import Task

STOP = "###STOP###"

# The user's fixed lines: the same in every task, whatever its scenario.
CONFIRM = "Yes, please go ahead."
INSIST = "I really need this done. Can't you make an exception just this once?"
# After a second refusal of one part of a request of several parts, the rest may still be done.
ACCEPT_REST = "Okay, I understand. Please go ahead with the rest of my request, then."
ACCEPT = f"I understand, thank you for explaining. {STOP}"
DONE = f"Thank you, that's all I needed. {STOP}"
LEAVE = f"Alright, I'll leave it there. Thank you. {STOP}"

_CONFIRMATION = re.compile(
    r"\b(confirm|proceed|go ahead|shall i|should i|do you want me to|would you like me to|want me to|"
    r"is that (right|correct|ok|okay)|does that (look|sound) (right|good|ok|okay)|ok to|okay to|may i|can i go ahead)\b")
_REFUSAL = re.compile(
    r"\b(cannot|can ?not|can't|unable|not able to|not be able|not (be )?allowed|not (be )?possible|not (be )?permitted|won't be able|"
    r"unfortunately|i'm afraid|i am afraid|not eligible|no longer eligible)\b")
_ASKING = re.compile(r"\b(please (tell|provide|share|let me know|specify)|let me know|could you (tell|provide|share|specify))\b")

# Kinds of record a question can ask about in tau2's retail and airline domains. A question naming three
# or more kinds at once is a shotgun ("which order, which item, which card ...") and reveals nothing.
ENTITY_KINDS: dict[str, tuple[str, ...]] = {
    "order": ("order",),
    "item": ("item", "product", "variant"),
    "payment": ("payment method", "payment", "card", "gift card", "paypal", "refund", "certificate"),
    "address": ("address",),
    "reservation": ("reservation", "booking", "trip", "confirmation number"),
    "flight": ("flight",),
    "passenger": ("passenger", "traveller", "traveler"),
    "cabin": ("cabin",),
    "baggage": ("bag", "baggage", "luggage"),
    "reason": ("reason",),
}
SHOTGUN_KINDS = 3


class UserSimulator(Protocol):
    max_turns: int
    stop_markers: tuple[str, ...]  # a reply holding any of them ends the episode

    def opening(self) -> str: ...

    def reply(self, transcript: list[dict[str, Any]], db_hash: str) -> str: ...


@lru_cache(maxsize=256)
def _noun_pattern(noun: str) -> re.Pattern[str]:
    # Whole words, plural allowed: "orders" asks about an order, "preorder" does not.
    return re.compile(r"(?<![\w])" + re.escape(normalise(noun)) + r"(s|es)?(?![\w])")


def mentions(text: str, nouns: tuple[str, ...] | list[str]) -> bool:
    """Whether ``text`` names any of ``nouns`` as whole words."""
    normal = normalise(text)
    return any(_noun_pattern(noun).search(normal) for noun in nouns)


def entity_kinds(text: str) -> set[str]:
    return {kind for kind, nouns in ENTITY_KINDS.items() if mentions(text, nouns)}


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


def asks_for(text: str, nouns: list[str] | tuple[str, ...]) -> bool:
    """A question that asks for a fact in natural words (one of its ``nouns``), and not for everything at once."""
    return is_question(text) and len(entity_kinds(text)) < SHOTGUN_KINDS and mentions(text, nouns)


def _spoken(value: Any) -> Iterator[str]:
    """The leaf values of an argument as a person says them (a passenger's name and birth date, not a dict)."""
    if isinstance(value, dict):
        for inner in value.values():
            yield from _spoken(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _spoken(inner)
    else:
        yield render_value(value)


# Codes without a digit are identifiers too when written like one (tau2 airline's reservation "GBCZYE").
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_#-]{4,}")


def identifiers(calls: list[dict[str, Any]], customer: str) -> list[str]:
    """The identifier-like values of ``calls``' arguments as spoken: ids, codes, amounts, addresses, dates — what
    says which record changes and how. Free text such as a reason is left out, and so is the customer's own
    id, which a proposal need not repeat."""
    return [v for call in calls for v in _spoken(call["arguments"])
            if v != customer and (any(ch.isdigit() for ch in v) or _CODE.fullmatch(v))]


def proposes(text: str, calls: list[dict[str, Any]], customer: str) -> bool:
    """Whether the agent's message names what ``calls`` would change: every identifier-like value they take."""
    values = identifiers(calls, customer)
    return bool(values) and all(contains(text, value) for value in values)


def _agent_said(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and not message.get("tool_calls")


class ScriptedUserSimulator:
    """The deterministic user of one generated task. Rules, first match wins, on the agent's latest message ``m``:

    1. the database changed and is in the goal state -> done (stop);
    2. a switch is scripted and not yet said: the agent has acted (the database changed) or ``m`` concretely
       proposes the first goal -> say the switch (the scenario's event);
    3. ``m`` asks, in natural words, for a withheld fact not yet given -> reveal it (the scenario's event); a
       question naming three or more kinds of record reveals nothing;
    4. ``m`` refuses -> insist once; at the next refusal accept (stop) — or, when the request has several
       parts, ask for the rest once and accept at the refusal after that;
    5. ``m`` asks for confirmation -> "yes";
    6. the database changed (not to the goal) and ``m`` asks nothing -> restate the current goal; if the user
       has just done so and the agent wrote nothing since, leave (stop): a partial job is not the end;
    7. otherwise (other questions, identity questions — the identity is in the opening —, small talk,
       stalling) -> restate the current goal (the switch line once it is said).

    A withheld fact that is asked for in words is an answer, not a refusal: rule 3 comes before rule 4, so
    "Unfortunately I can't tell which order you mean; which one is it?" gets the fact in ``ambiguous`` and,
    as any refusal, the insistence elsewhere.
    """

    def __init__(self, task: Task, *, initial_hash: str, goal_hash: str, is_write: Callable[[str], bool],
                 max_turns: int = 16):
        script = task.extra.get(SCRIPT_KEY)
        if not isinstance(script, dict):
            raise ValueError(f"task '{task.id}' has no {SCRIPT_KEY}: the scripted user plays generated tasks only")
        self.script = script
        self.customer = str(script.get("customer") or "")
        self.initial_hash = initial_hash
        self.goal_hash = goal_hash
        self.is_write = is_write
        self.max_turns = max_turns
        self.stop_markers = (STOP,)
        # Parts of the request as first asked: the final goal's writes and the refused write, or the first goal.
        self.asked_parts = len(script["first_goal"]) if script.get("switch") else len(task.gold_actions) + len(task.prohibited_actions)
        self.final_parts = len(task.gold_actions)

    def opening(self) -> str:
        return str(self.script["opening"])

    def reply(self, transcript: list[dict[str, Any]], db_hash: str) -> str:
        said = user_turns(transcript)
        if len(said) >= self.max_turns:
            return STOP
        agent = next((str(m.get("content") or "") for m in reversed(transcript) if _agent_said(m)), "")
        script = self.script
        switch = str(script.get("switch") or "")
        switched = bool(switch) and switch in said
        changed = db_hash != self.initial_hash
        current = switch if switched else str(script["restatement"])

        if changed and db_hash == self.goal_hash:
            return DONE
        if switch and not switched and (changed or proposes(agent, script["first_goal"], self.customer)):
            return switch
        for fact in script.get("reveal") or []:
            if fact["reply"] not in said and asks_for(agent, fact["nouns"]):
                return str(fact["reply"])
        if is_refusal(agent):
            if INSIST not in said:
                return INSIST
            parts = self.final_parts if switched else self.asked_parts
            return ACCEPT_REST if parts > 1 and ACCEPT_REST not in said else ACCEPT
        if is_confirmation_request(agent):
            return CONFIRM
        if changed and not is_question(agent) and said[-1] == current and not self._wrote_since_user(transcript):
            return LEAVE
        return current

    def _wrote_since_user(self, transcript: list[dict[str, Any]]) -> bool:
        for message in reversed(transcript):
            if message.get("role") == "user":
                return False
            for call in message.get("tool_calls") or []:
                if self.is_write(str((call.get("function") or {}).get("name") or "")):
                    return True
        return False
