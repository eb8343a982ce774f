"""Deterministic verification of one tool-use rollout, with an explanation when it fails.

Success iff the final database hash equals the hash of replaying the gold actions on the initial
database, and every expected output appears (normalised) in what the agent told the user.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from datasets.tool_use.domain import DB
from datasets.tool_use.env import ToolEnv, canonical_json, db_hash

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


def diff_dbs(actual: Any, expected: Any, path: str = "", limit: int = 8) -> list[str]:
    """Up to ``limit`` differences, as 'table/key/field: actual … (expected …)'."""
    out: list[str] = []

    def walk(a: Any, e: Any, where: str) -> None:
        if len(out) >= limit or a == e:
            return
        if isinstance(a, dict) and isinstance(e, dict):
            for key in sorted(set(a) | set(e), key=str):
                if key not in e:
                    out.append(f"{where}{key}: unexpected {_short(a[key])}")
                elif key not in a:
                    out.append(f"{where}{key}: missing (expected {_short(e[key])})")
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


def verify_rollout(domain: str, db_seed: int, final_db: DB, agent_messages: list[str], reference: dict[str, Any]) -> Verdict:
    final_hash = db_hash(final_db)
    said = "\n".join(agent_messages)
    missing = [o for o in reference.get("expected_outputs", []) if not contains(said, o)]
    reasons = []
    diff: list[str] = []
    if final_hash != reference["expected_db_hash"]:
        expected = replay(domain, db_seed, reference.get("gold_actions", []))
        diff = diff_dbs(final_db, expected)
        reasons.append("database differs from the goal state: " + "; ".join(diff))
        for forbidden in reference.get("forbidden_actions", []):
            if db_hash(replay(domain, db_seed, [forbidden])) == final_hash:
                reasons.append(f"the agent performed the action the policy forbids ({forbidden['name']} {json.dumps(forbidden['arguments'], sort_keys=True)})")
    if missing:
        reasons.append("the agent never told the user: " + ", ".join(repr(m) for m in missing))
    return Verdict(not reasons, " | ".join(reasons), diff, missing)
