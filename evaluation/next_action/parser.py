"""Tolerant parser for next-action replies: whatever a model says, the result is a prediction dict.

Accepted: the strict format, the same inside code fences or after prose, trailing commas, single-quoted
strings, Python literals (True/False/None), a flat ``{"type": ..., "name": ...}`` object and
``"action": "terminate"``. Anything else becomes ``type="invalid"`` with ``parse_error`` set; it never
raises.
"""

from __future__ import annotations

import json
from typing import Any

from evaluation.metrics.next_action import ACTION_TYPES

# Scanning every "{" of a 200 KB reply is quadratic; real answers put their object near the start.
MAX_CANDIDATES = 25
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


def _balanced_object(text: str, start: int) -> str | None:
    """The text of the brace-balanced object opening at ``start``, skipping braces inside strings."""
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return None


def _repair(text: str) -> str:
    """Rewrite near-JSON into JSON: single-quoted strings, trailing commas and Python literals."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            j, buf = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    # An escaped single quote is plain text once the string is double-quoted.
                    buf.append("'" if text[j + 1] == "'" else text[j:j + 2])
                    j += 2
                    continue
                buf.append('\\"' if text[j] == '"' else text[j])
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
        elif ch == ",":
            k = i + 1
            while k < n and text[k].isspace():
                k += 1
            if k < n and text[k] in "}]":
                i += 1  # a trailing comma
                continue
            out.append(ch)
            i += 1
        elif ch.isalpha():
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            out.append(_PY_LITERALS.get(word, word))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _load(candidate: str) -> Any:
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    try:
        return json.loads(_repair(candidate))  # only for what is not JSON already: repairing costs a Python loop
    except ValueError:
        return None


def _objects(reply: str) -> list[dict[str, Any]]:
    objects, start, tried = [], reply.find("{"), 0
    while start != -1 and tried < MAX_CANDIDATES:
        tried += 1
        block = _balanced_object(reply, start)
        value = _load(block) if block else None
        if isinstance(value, dict):
            objects.append(value)
            start = reply.find("{", start + len(block))  # type: ignore[arg-type]
        else:
            start = reply.find("{", start + 1)
    return objects


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value)


def invalid(error: str, rationale: str = "") -> dict[str, Any]:
    return {"type": "invalid", "name": "", "text": "", "click_type": "", "rationale": rationale, "parse_error": error}


def parse_reply(reply: str | None) -> dict[str, Any]:
    """Parse a model reply into ``{type, name, text, click_type, rationale, parse_error}``."""
    if not reply or not reply.strip():
        return invalid("empty reply")
    objects = _objects(reply)
    if not objects:
        return invalid("no JSON object in the reply")
    # The first object that names an action wins; an outer wrapper object counts as naming one.
    chosen = next((o for o in objects if "action" in o or "type" in o), objects[0])
    rationale = _text(chosen.get("rationale"))
    action = chosen.get("action", chosen)
    if isinstance(action, str):
        action = {"type": action}
    if not isinstance(action, dict):
        return invalid(f"'action' is a {type(action).__name__}, not an object", rationale)
    kind = _text(action.get("type")).lower()
    if kind not in ACTION_TYPES:
        return invalid(f"unknown action type {kind!r}" if kind else "the action has no 'type'", rationale)
    if kind == "terminate":
        return {"type": kind, "name": "", "text": "", "click_type": "", "rationale": rationale, "parse_error": ""}
    return {
        "type": kind,
        "name": _text(action.get("name")),
        "text": _text(action.get("text")) if kind == "input" else "",
        "click_type": _text(action.get("click_type")).lower() if kind == "click" else "",
        "rationale": rationale,
        "parse_error": "",
    }
