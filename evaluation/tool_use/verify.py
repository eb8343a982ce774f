"""Deterministic verification of one tool-use rollout, with an explanation when it fails.

Success iff the final database hash equals the hash of replaying the gold actions on the initial
database, and every expected output appears (normalised) in what the agent told the user.

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

from datasets.tool_use.domain import DB
from datasets.tool_use.env import ToolEnv, db_hash
from evaluation.canonical import canonical_json

_NUMBER = re.compile(r"\d+\.\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NOISE = re.compile(r"[^\w.#@+-]+")


def normalise(text: str) -> str:
    """Casefold, drop punctuation and thousands separators, and write numbers without trailing zeros,
    so that "$1,234.50" matches "1234.5" and "30 Days" matches "30 days"."""
    text = _THOUSANDS.sub("", text.casefold())
    text = _NUMBER.sub(lambda m: m.group(0).rstrip("0").rstrip("."), text)
    return " ".join(_NOISE.sub(" ", text).split())


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

    def as_prediction(self) -> dict[str, Any]:
        """The verdict's part of a stored prediction (full form: ``public_verdict`` derives the public one)."""
        return {"success": self.success, "failure_reason": self.failure_reason, "db_diff": self.db_diff,
                "missing_outputs": self.missing_outputs, "forbidden_action": self.forbidden_action}


def verify_rollout(domain: str, db_seed: int, final_db: DB, agent_messages: list[str], reference: dict[str, Any]) -> Verdict:
    final_hash = db_hash(final_db)
    said = "\n".join(agent_messages)
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
    if missing:
        reasons.append("the agent never told the user: " + ", ".join(repr(m) for m in missing))
    return Verdict(not reasons, " | ".join(reasons), diff, missing, performed)


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
    if untold:
        reasons.append(f"the agent never told the user {untold} expected fact{'s' if untold > 1 else ''}")
    public = {key: prediction[key] for key in ("success", "stop_reason", "final_db_hash") if key in prediction}
    if not prediction.get("success"):
        # A failure the parts above do not explain (a stored verdict of an older shape) still reads as one.
        public["failure_reason"] = " | ".join(reasons) or "the goal state was not reached"
        public.update({"differing_paths": wrong, "missing_goal_entries": absent, "missing_output_count": untold,
                       "forbidden_action_taken": forbidden})
    return public
