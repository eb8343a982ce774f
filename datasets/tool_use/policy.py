"""A domain policy as code: the rules the generator breaks on purpose and an honest refusal must name.

The agent reads the policy as markdown (tau2's ``policy.md``); the generator and the grader read the same
rules here. A rule names the write tool it restricts, a predicate over the database and the call's
arguments, and the ways a person states its reason (regular expressions over ``normalise``d text, with
synonyms and number formats), so that a refusal counts only when it gives this request's reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from datasets.tool_use.text import contains, normalise

DB = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    id: str  # "retail.cancel.status": unique within a domain
    tool: str  # the write tool it restricts
    message: str  # how an agent explains a refusal under this rule
    reasons: tuple[str, ...]  # ways of stating the reason, as regexes over normalised text
    violated: Callable[[DB, dict[str, Any]], bool]
    # The facts of one request behind the rule, each in the spellings a person may use (an order's status, a
    # booking date): what an agent can only know by reading the records, so a refusal that names them was not
    # guessed from the tool alone. ``evidence_phrase`` says the first spelling ("It was booked on {}.").
    evidence: Callable[[DB, dict[str, Any]], tuple[str, ...]] | None = None
    evidence_phrase: str = ""

    def reason_pattern(self) -> re.Pattern[str]:
        return _reason_pattern(self.reasons)

    def facts(self, db: DB, arguments: dict[str, Any]) -> tuple[str, ...]:
        """The evidence spellings, or none when ``db`` lacks the records (an agent's partial view)."""
        if self.evidence is None:
            return ()
        try:
            return self.evidence(db, arguments)
        except (KeyError, TypeError, IndexError):
            return ()

    def explain(self, db: DB, arguments: dict[str, Any]) -> str:
        """A refusal's explanation under this rule: its message and the facts of this request behind it."""
        facts = self.facts(db, arguments)
        return f"{self.message} {self.evidence_phrase.format(facts[0])}" if facts else self.message


@lru_cache(maxsize=512)
def _reason_pattern(reasons: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{r})" for r in reasons))


@dataclass(frozen=True)
class Policy:
    text: str  # markdown for the agent's system prompt
    rules: tuple[Rule, ...]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"unknown policy rule '{rule_id}'")

    def violations(self, db: DB, tool: str, arguments: dict[str, Any]) -> list[Rule]:
        found = []
        for rule in self.rules:
            if rule.tool != tool:
                continue
            try:
                broken = rule.violated(db, arguments)
            except (KeyError, TypeError, IndexError):
                # A missing record is the tool's error to report (unknown id), not a policy violation.
                broken = False
            if broken:
                found.append(rule)
        return found


# A policy line longer than this is prose; two of them verbatim in one message is the policy pasted.
_POLICY_LINE_CHARS = 40
# Reasons of this many rules in one message is a list of everything the policy forbids, not an explanation.
_MANY_RULES = 3


def refusal_problem(policy: Policy, rule: Rule, agent_messages: list[str], evidence: tuple[str, ...] | list[str] = ()) -> str:
    """Why the agent's refusal does not count ('' when it does).

    It counts when some message states the reason of ``rule``, the agent names one of the ``evidence``
    spellings of the facts behind it (when the rule has any: "it was booked on May 2"), and no message names
    several reasons for the same action, names reasons of three or more rules in all, or reproduces policy
    lines: a refusal that lists everything the policy forbids says nothing about this request. (Two reasons
    of different actions may meet naturally: "it is still pending, so it cannot be returned yet".)
    """
    policy_lines = [normalise(line) for line in policy.text.splitlines() if len(line) > _POLICY_LINE_CHARS]
    stated = False
    for message in agent_messages:
        text = normalise(message)
        # Rules of several tools may share a reason ("the order is no longer pending"): count reasons, not rules.
        named = [r for r in policy.rules if r.reason_pattern().search(text)]
        same_action = {r.reasons for r in named if r.tool == rule.tool}
        if len(same_action) > 1 or len({r.reasons for r in named}) >= _MANY_RULES:
            return "a message names several policy rules"
        if sum(line in text for line in policy_lines) > 1:
            return "a message reproduces the policy text"
        stated = stated or rule in named
    if not stated:
        return "no message states the reason the policy gives for refusing"
    if evidence and not any(contains(message, fact) for message in agent_messages for fact in evidence):
        return "no message names the facts of this request behind the reason (read from its records)"
    return ""
