"""A tool call's result as an episode sees it, and the decoding of a call's arguments, shared by the tool
environments (``evaluation.tau2.environment``) and the episode runner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CallResult:
    output: str  # what goes back to the agent: JSON, or a line starting with "Error:"
    status: str  # "ok", "tool_error" (the tool refused) or "invalid" (unknown tool, malformed arguments)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def decode_arguments(name: str, arguments: str | dict[str, Any]) -> dict[str, Any] | CallResult:
    """A call's arguments as a JSON object, or the error the agent gets back for them."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return CallResult(f"Error: arguments of '{name}' are not valid JSON ({exc.msg})", "invalid")
    if not isinstance(arguments, dict):
        return CallResult(f"Error: arguments of '{name}' must be a JSON object", "invalid")
    return arguments
