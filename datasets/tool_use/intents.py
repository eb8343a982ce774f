"""What the Trajectory2Task generator knows of a tau2 domain beyond its tools: how a customer asks.

A domain (``datasets/tool_use/retail.py``, ``airline.py``) is tau2-bench's environment (database, tools,
policy markdown) plus:
- its policy as code (``datasets.tool_use.policy``);
- one ``Write`` per write tool the generator covers: how to reach a valid call by exploring the read
  tools from one customer (``explore``, branching on what the reads return), how to push a valid call over
  one policy rule (``break_args``), what the agent must tell the customer afterwards (``outputs``), and how
  the customer phrases the request: a pool of openers and, per fact, a pool of sentences;
- how a customer says who they are, and a pool of personas.

Facts are groups of the tool's arguments as a person knows them ("the address" is six arguments). A
deciding fact picks the record that changes, so the ``ambiguous`` scenario may withhold it.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from datasets.tool_use.policy import DB, Policy
from datasets.tool_use.text import render_value
from evaluation.tau2.environment import Tau2Environment


class WalkAbort(Exception):
    """A walk reached a dead end (a tool error, nothing to choose from)."""


@dataclass(frozen=True)
class Step:
    name: str
    arguments: dict[str, Any]
    output: str
    ok: bool


class Walker:
    """What an ``explore`` hook sees: one customer, a seeded RNG and the read tools of a database copy."""

    def __init__(self, env: Tau2Environment, rng: random.Random, user_id: str):
        self.env = env
        self.rng = rng
        self.user_id = user_id
        self.steps: list[Step] = []

    def call(self, name: str, **arguments: Any) -> Any:
        result = self.env.call(name, arguments)
        self.steps.append(Step(name, arguments, result.output, result.ok))
        if not result.ok:
            raise WalkAbort(result.output)
        try:
            return json.loads(result.output)
        except json.JSONDecodeError:
            return result.output

    def choice(self, options: list[Any]) -> Any:
        if not options:
            raise WalkAbort("nothing to choose from")
        return self.rng.choice(options)

    def some(self, options: list[Any], most: int) -> list[Any]:
        """One to ``most`` of ``options``, in their original order."""
        if not options:
            raise WalkAbort("nothing to choose from")
        picked = set(self.rng.sample(range(len(options)), k=self.rng.randint(1, min(most, len(options)))))
        return [o for i, o in enumerate(options) if i in picked]


@dataclass(frozen=True)
class Fact:
    """One thing the customer knows about a request: some of the tool's arguments, stated in a sentence."""

    params: tuple[str, ...]
    phrases: tuple[str, ...]  # sentence pool; "{}" is the value as spoken
    nouns: tuple[str, ...]  # the words of a natural question about it ("Which order ...?")
    deciding: bool = False  # picks the record that changes: may be withheld in `ambiguous`
    speak: Callable[[dict[str, Any]], str] | None = None  # the value as spoken (default: the one argument)

    def value(self, arguments: dict[str, Any]) -> str:
        if self.speak is not None:
            return self.speak(arguments)
        return render_value(arguments[self.params[0]])

    def sentence(self, arguments: dict[str, Any], rng: random.Random) -> str:
        return rng.choice(self.phrases).format(self.value(arguments))

    def patterns(self) -> list[re.Pattern[str]]:
        """One regex per phrase, capturing the value (what a scripted agent reads back)."""
        out = []
        for phrase in self.phrases:
            before, _, after = phrase.partition("{}")
            out.append(re.compile(re.escape(before) + r"(.+?)" + re.escape(after) + r"(?=\s|$)"))
        return out


@dataclass(frozen=True)
class Write:
    """Generation hooks of one write tool."""

    tool: str
    openers: tuple[str, ...]  # how a request for this tool starts; each opener belongs to one tool
    facts: dict[str, Fact]  # by name; together they state every argument but the customer's own id
    explore: Callable[[Walker], dict[str, Any] | None]
    outputs: Callable[[DB, Any], list[str]] = lambda db, result: []  # facts the agent must tell afterwards
    # A variant of valid arguments that breaks exactly one rule (the rule's id with it), or None.
    break_args: Callable[[DB, dict[str, Any], random.Random], tuple[dict[str, Any], str] | None] | None = None
    # The reason the customer gives (stated with the request) when the policy needs one, from the arguments.
    user_param: str = ""  # the argument that is the customer's own id, if the tool takes it


@dataclass(frozen=True)
class Domain:
    name: str
    policy: Policy
    writes: tuple[Write, ...]
    identify: Callable[[DB, str, random.Random], str]  # how a customer says who they are
    identity_nouns: tuple[str, ...]  # what an agent asks for to authenticate
    greetings: tuple[str, ...]
    personas: tuple[str, ...] = field(default=("a customer",))

    # Both tau2 domains keep their customers in ``users``, each with a first and a last name.
    @staticmethod
    def customers(db: DB) -> list[str]:
        return sorted(db["users"])

    @staticmethod
    def display_name(db: DB, user_id: str) -> str:
        name = db["users"][user_id]["name"]
        return f"{name['first_name']} {name['last_name']}"

    def write(self, tool: str) -> Write:
        for write in self.writes:
            if write.tool == tool:
                return write
        raise KeyError(f"{self.name} has no generated write '{tool}'")

    @cached_property
    def write_tools(self) -> frozenset[str]:
        return frozenset(w.tool for w in self.writes)
