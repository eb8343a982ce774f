"""The plug-in interface of a tool-use domain (Trajectory2Task, DESIGN §1.2).

A domain is one package under ``datasets/tool_use/domains/`` exposing ``DOMAIN``: a seeded database
generator, tools (one small class each, read or write, with a JSON schema), and a policy given to the
agent as markdown and applied by the generator and verifier as code. Write tools also carry the
task-generation hooks: how to reach them by exploring (``explore``), how the user phrases the request
(``intent``: an opener and one sentence per argument, with the keywords an agent uses to ask for it and
whether the argument decides which record is changed), what the agent must tell the user afterwards
(``outputs``) and how to turn a valid request into one the policy forbids (``break_args``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, ClassVar

if TYPE_CHECKING:
    from datasets.tool_use.pipeline import Walker

DB = dict[str, Any]


class ToolError(Exception):
    """A tool refused the call (unknown id, wrong state); the message is shown to the agent."""


_NUMBER = re.compile(r"\d+\.\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NOISE = re.compile(r"[^\w.#@+-]+")


def normalise(text: str) -> str:
    """Casefold, drop punctuation and thousands separators, and write numbers without trailing zeros,
    so that "$1,234.50" matches "1234.5" and "30 Days" matches "30 days"."""
    text = _THOUSANDS.sub("", text.casefold())
    text = _NUMBER.sub(lambda m: m.group(0).rstrip("0").rstrip("."), text)
    return " ".join(_NOISE.sub(" ", text).split())


def money(value: float) -> str:
    """How amounts are spoken and expected: two decimals (verification normalises trailing zeros)."""
    return f"{value:.2f}"


@dataclass(frozen=True)
class Slot:
    """One argument of a write tool as the user knows it."""

    phrase: str  # how the user states it; "{}" is the value: "The order id is {}."
    keywords: tuple[str, ...]  # what an agent says when it asks for it ("which order", "order id")
    deciding: bool = False  # picks the record to change, so it may be withheld in `ambiguous`
    # Key under which candidate values show up in read results (defaults to the argument name).
    source_key: str = ""

    def render(self, value: Any) -> str:
        return self.phrase.format(render_value(value))

    def pattern(self) -> re.Pattern[str]:
        before, _, after = self.phrase.partition("{}")
        # A value runs to the phrase's closing text followed by whitespace or the end of the message.
        return re.compile(re.escape(before) + r"(.+?)" + re.escape(after) + r"(?=\s|$)")


def render_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(render_value(v) for v in value)
    if isinstance(value, float):
        return money(value)
    return str(value)


def parse_value(text: str, schema: dict[str, Any]) -> Any:
    """Inverse of ``render_value`` for one JSON-schema-typed argument; raises ValueError."""
    kind = schema.get("type")
    text = text.strip()
    if kind == "array":
        return [parse_value(part, schema.get("items", {})) for part in text.split(", ") if part]
    if kind == "number":
        return float(text)
    if kind == "integer":
        return int(text)
    return text


@dataclass(frozen=True)
class Intent:
    opener: str  # "I'd like to cancel an order." — unique per write tool of a domain
    slots: dict[str, Slot]  # one per parameter of the tool


class Tool:
    """One tool. Subclasses set the class attributes and implement ``invoke``."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "read" or "write"
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]
    # Read tools that return one stored record verbatim: (table, parameter holding its key). Agents that
    # check the policy themselves use it to know which call fetches the records a rule looks at.
    record: ClassVar[tuple[str, str] | None] = None
    intent: ClassVar[Intent | None] = None  # write tools only

    def invoke(self, db: DB, **args: Any) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    # -- generation hooks (write tools) --------------------------------------------------------------

    def explore(self, walk: "Walker") -> dict[str, Any] | None:
        """Walk the read tools from the walker's user and return arguments for this tool (or None)."""
        raise NotImplementedError(f"{self.name} is not a write tool")

    def outputs(self, result: Any) -> list[str]:
        """Facts from the write's result that the agent must tell the user."""
        return []

    def break_args(self, db: DB, args: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        """A variant of valid arguments that breaks a policy rule, or None when there is none."""
        return None


@dataclass(frozen=True)
class Rule:
    """One policy rule as code. ``violated`` only reads the records named in ``reads``."""

    tool: str
    keyword: str  # the reason an agent must give when refusing; contained in ``message``
    message: str
    reads: tuple[tuple[str, str], ...]  # (table, argument whose value is the record key)
    violated: Callable[[DB, dict[str, Any]], bool]
    # The ways of stating the reason, as regular expressions over ``normalise``d text (casefolded,
    # punctuation but hyphens dropped, "2,000.00" written "2000"): synonyms and number formats. Empty:
    # the keyword as a whole word. A keyword that also occurs in other rules' explanations ("gift card")
    # is left out of its own list.
    reasons: tuple[str, ...] = ()

    def reason_pattern(self) -> re.Pattern[str]:
        return _reason_pattern(self.keyword, self.reasons)


@lru_cache(maxsize=256)
def _reason_pattern(keyword: str, reasons: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = reasons or (r"(?<![\w])" + re.escape(normalise(keyword)) + r"(?![\w])",)
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


@dataclass(frozen=True)
class Policy:
    text: str  # markdown for the agent's system prompt
    rules: tuple[Rule, ...]

    def violations(self, db: DB, name: str, args: dict[str, Any]) -> list[Rule]:
        found = []
        for rule in self.rules:
            if rule.tool != name:
                continue
            try:
                broken = rule.violated(db, args)
            except (KeyError, TypeError):
                # A missing record is the tool's error to report (unknown id), not a policy violation.
                broken = False
            if broken:
                found.append(rule)
        return found


@dataclass(frozen=True)
class Domain:
    name: str
    title: str  # first line of the policy; identifies the domain in a system prompt
    make_db: Callable[[int], DB]  # seed -> database (JSON-serialisable, deterministic)
    people: Callable[[DB], list[tuple[str, str]]]  # (user id, display name) of every customer
    identity: Slot  # how a user states who they are: "My user id is {}."
    identity_param: str  # the tool parameter that takes that id ("user_id")
    tools: tuple[Tool, ...]
    policy: Policy
    personas: tuple[str, ...] = field(default=("a customer",))

    def tool(self, name: str) -> Tool:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(name)

    @property
    def write_tools(self) -> tuple[Tool, ...]:
        return tuple(t for t in self.tools if t.kind == "write")

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools]


def params(properties: dict[str, dict[str, Any]], required: list[str] | None = None) -> dict[str, Any]:
    """A JSON schema for tool parameters; every listed property is required unless told otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }
