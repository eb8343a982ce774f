"""Deterministic verification of one tool-use rollout, with an explanation when it fails.

Success iff the final database hash equals the hash of replaying the gold actions on the initial
database, and every expected output appears (normalised) in what the agent told the user; for an
infeasible task, the expected output is the reason for refusing, stated in any words the rule accepts.

The explanation comes in two forms. The full one names the expected values (the goal database's
records, the outputs the agent should have given, the forbidden action): those are the task's
reference, so it is for staff and for splits whose references are published. ``public_verdict`` turns
a stored verdict into the form anyone may see: where the agent's database went wrong, and how many
expected outputs it missed, without a single expected value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from datasets.tool_use.domain import DB, Policy, Rule, normalise
from datasets.tool_use.domains import get_domain
from datasets.tool_use.env import ToolEnv, db_hash
from evaluation.canonical import canonical_json

def contains(haystack: str, needle: str) -> bool:
    """Normalised substring; numbers must match whole, so that "54.20" is not found in "54.25" while
    "gift card" is found in "gift cards"."""
    wanted = normalise(needle)
    pattern = re.escape(wanted)
    if wanted[:1].isdigit():
        pattern = r"(?<![\d.])" + pattern
    if wanted[-1:].isdigit():
        pattern += r"(?!\d|\.\d)"
    return re.search(pattern, normalise(haystack)) is not None


def replay(domain: str, seed: int, actions: list[dict[str, Any]]) -> DB:
    """The initial database with ``actions`` applied, ignoring any that fail."""
    env = ToolEnv.fresh(domain, seed)
    for action in actions:
        env.call(action["name"], action["arguments"])
    return env.db


_MISSING = ": missing (expected "


def diff_dbs(actual: Any, expected: Any, path: str = "", limit: int = 8) -> list[str]:
    """Up to ``limit`` differences, as 'table/key/field: actual … (expected …)'.

    A path the goal state has and the agent's database lacks reads 'path: missing (expected …)'; that
    path itself comes from the reference, which ``public_verdict`` relies on to leave it out.
    """
    out: list[str] = []

    def walk(a: Any, e: Any, where: str) -> None:
        if len(out) >= limit or a == e:
            return
        if isinstance(a, dict) and isinstance(e, dict):
            for key in sorted(set(a) | set(e), key=str):
                if key not in e:
                    out.append(f"{where}{key}: unexpected {_short(a[key])}")
                elif key not in a:
                    out.append(f"{where}{key}{_MISSING}{_short(e[key])})")
                else:
                    walk(a[key], e[key], f"{where}{key}/")
                if len(out) >= limit:
                    return
        else:
            out.append(f"{where.rstrip('/')}: {_short(a)} (expected {_short(e)})")

    walk(actual, expected, path)
    return out


def _short(value: Any, width: int = 80) -> str:
    text = canonical_json(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class Verdict:
    success: bool
    failure_reason: str = ""
    db_diff: list[str] = field(default_factory=list)
    missing_outputs: list[str] = field(default_factory=list)
    forbidden_action: dict[str, Any] | None = None
    refusal_problem: str = ""  # infeasible tasks: why the refusal does not count (names no rule's reason)

    def as_prediction(self) -> dict[str, Any]:
        """The verdict's part of a stored prediction (full form: ``public_verdict`` derives the public one)."""
        return {"success": self.success, "failure_reason": self.failure_reason, "db_diff": self.db_diff,
                "missing_outputs": self.missing_outputs, "forbidden_action": self.forbidden_action,
                "refusal_problem": self.refusal_problem}


# A policy line longer than this is prose; two of them verbatim in one message is the policy pasted.
_POLICY_LINE_CHARS = 40


def refusal_problem(policy: Policy, rule: Rule, agent_messages: list[str]) -> str:
    """Why the agent's refusal does not count ('' when it does).

    It counts when some message states the reason of ``rule`` (its keyword, a synonym or another number
    format) and no message names several reasons for the same action, names reasons of three or more
    rules in all, or reproduces policy lines: a refusal that lists everything the policy forbids says
    nothing about this request. (Two reasons of different actions may meet naturally: "it is still
    pending, so it cannot be returned yet".)
    """
    policy_lines = [normalise(line) for line in policy.text.splitlines() if len(line) > _POLICY_LINE_CHARS]
    stated = False
    for message in agent_messages:
        text = normalise(message)
        named = {(r.tool, r.keyword) for r in policy.rules if r.reason_pattern().search(text)}
        same_action = {keyword for tool, keyword in named if tool == rule.tool}
        if len(same_action) > 1 or len({keyword for _, keyword in named}) > 2:
            return "a message names several policy rules"
        if sum(line in text for line in policy_lines) > 1:
            return "a message reproduces the policy text"
        stated = stated or rule.keyword in same_action
    return "" if stated else "no message states the reason the policy gives for refusing"


def forbidding_rule(domain: str, reference: dict[str, Any]) -> Rule | None:
    """The rule an infeasible task's request breaks: its forbidden action's tool, its expected reason."""
    forbidden = reference.get("forbidden_actions") or []
    if not forbidden:
        return None
    reasons = set(reference.get("expected_outputs") or [])
    return next((r for r in get_domain(domain).policy.rules if r.tool == forbidden[0]["name"] and r.keyword in reasons), None)


def verify_rollout(domain: str, db_seed: int, final_db: DB, agent_messages: list[str], reference: dict[str, Any]) -> Verdict:
    """Success iff the final database is the goal state (for infeasible tasks: untouched, or the allowed
    part done), and the agent told the user every expected output — for an infeasible task, the specific
    reason it refuses (``refusal_problem``)."""
    final_hash = db_hash(final_db)
    said = "\n".join(agent_messages)
    rule = forbidding_rule(domain, reference)
    refusal = ""
    if rule is not None:
        refusal = refusal_problem(get_domain(domain).policy, rule, agent_messages)
        missing = [rule.keyword] if refusal else []
    else:
        missing = [o for o in reference.get("expected_outputs", []) if not contains(said, o)]
    reasons = []
    diff: list[str] = []
    performed: dict[str, Any] | None = None
    if final_hash != reference["expected_db_hash"]:
        expected = replay(domain, db_seed, reference.get("gold_actions", []))
        diff = diff_dbs(final_db, expected)
        reasons.append("database differs from the goal state: " + "; ".join(diff))
        performed = next((f for f in reference.get("forbidden_actions", []) if db_hash(replay(domain, db_seed, [f])) == final_hash), None)
        if performed:
            reasons.append(f"the agent performed the action the policy forbids ({performed['name']} {json.dumps(performed['arguments'], sort_keys=True)})")
    if refusal:
        reasons.append(f"refusal does not count: {refusal}")
    elif missing:
        reasons.append("the agent never told the user: " + ", ".join(repr(m) for m in missing))
    return Verdict(not reasons, " | ".join(reasons), diff, missing, performed, refusal)


def public_verdict(prediction: dict[str, Any]) -> dict[str, Any]:
    """A stored tool-use prediction without anything taken from the reference.

    Kept: success, stop reason, the agent's final database hash, and the paths where the agent's
    database differs from the goal state (only paths the agent's database has: one it lacks would name
    a record of the goal state). Replaced by counts: the missing expected outputs and goal-state paths.
    Every other key is dropped, so a reference-bearing key added later stays on the server by default.
    """
    lines = [str(line) for line in prediction.get("db_diff") or []]
    wrong = [line.split(": ", 1)[0] for line in lines if _MISSING not in line]
    absent = len(lines) - len(wrong)
    untold = len(prediction.get("missing_outputs") or [])
    forbidden = bool(prediction.get("forbidden_action"))
    reasons = []
    if wrong or absent:
        where = [*wrong, *([f"{absent} part{'s' if absent > 1 else ''} of the goal state missing"] if absent else [])]
        reasons.append("database differs from the goal state at: " + "; ".join(where))
    if forbidden:
        reasons.append("the agent performed an action the policy forbids")
    refusal = str(prediction.get("refusal_problem") or "")
    if refusal:
        reasons.append(f"refusal does not count: {refusal}")
    elif untold:
        reasons.append(f"the agent never told the user {untold} expected fact{'s' if untold > 1 else ''}")
    public = {key: prediction[key] for key in ("success", "stop_reason", "final_db_hash") if key in prediction}
    if not prediction.get("success"):
        # A failure the parts above do not explain (a stored verdict of an older shape) still reads as one.
        public["failure_reason"] = " | ".join(reasons) or "the goal state was not reached"
        public.update({"differing_paths": wrong, "missing_goal_entries": absent, "missing_output_count": untold,
                       "forbidden_action_taken": forbidden, "refusal_problem": refusal})
    return public
