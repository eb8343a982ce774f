"""A domain's database copy plus tool execution, shared by the generator, the runner and the verifier."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from datasets.tool_use.domain import DB, Domain, ToolError
from datasets.tool_use.domains import get_domain
from evaluation.canonical import canonical_hash, canonical_json


def db_hash(db: DB) -> str:
    return canonical_hash(db)


@lru_cache(maxsize=16)
def _initial_db_text(domain: str, seed: int) -> str:
    return canonical_json(get_domain(domain).make_db(seed))


def initial_db(domain: str, seed: int) -> DB:
    """A fresh copy of a domain's database for ``seed`` (generated once per process, then copied)."""
    return json.loads(_initial_db_text(domain, seed))


@dataclass(frozen=True)
class CallResult:
    output: str  # what goes back to the agent: JSON, or a line starting with "Error:"
    status: str  # "ok", "tool_error" (the tool refused) or "invalid" (unknown tool, malformed arguments)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _type_error(value: Any, schema: dict[str, Any], where: str) -> str | None:
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind in checks and not checks[kind](value):
        return f"'{where}' must be of type {kind}"
    if "enum" in schema and value not in schema["enum"]:
        return f"'{where}' must be one of {schema['enum']}"
    if kind == "array":
        for i, item in enumerate(value):
            if error := _type_error(item, schema.get("items", {}), f"{where}[{i}]"):
                return error
    return None


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


def validate_arguments(arguments: Any, schema: dict[str, Any]) -> str | None:
    """The first problem of ``arguments`` against a tool's parameter schema, or None."""
    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in arguments:
            return f"missing required argument '{name}'"
    for name, value in arguments.items():
        if name not in props:
            return f"unexpected argument '{name}'"
        if error := _type_error(value, props[name], name):
            return error
    return None


class ToolEnv:
    """One episode's database and the domain's tools. Never raises on bad calls: it reports them."""

    def __init__(self, domain: Domain, db: DB):
        self.domain = domain
        self.db = db
        self._tools = {t.name: t for t in domain.tools}

    @classmethod
    def fresh(cls, domain: str, seed: int) -> "ToolEnv":
        return cls(get_domain(domain), initial_db(domain, seed))

    def db_hash(self) -> str:
        return db_hash(self.db)

    hash = db_hash  # the name the generator and verifier use

    @property
    def policy(self) -> str:
        """The policy text the agent gets as its system prompt."""
        return self.domain.policy.text

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The tools in OpenAI's format, as the agent gets them."""
        return self.domain.schemas()

    def call(self, name: str, arguments: str | dict[str, Any]) -> CallResult:
        tool = self._tools.get(name)
        if tool is None:
            return CallResult(f"Error: unknown tool '{name}'. Available tools: {', '.join(self._tools)}", "invalid")
        arguments = decode_arguments(name, arguments)
        if isinstance(arguments, CallResult):
            return arguments
        if problem := validate_arguments(arguments, tool.parameters):
            return CallResult(f"Error: invalid arguments for '{name}': {problem}", "invalid")
        try:
            result = tool.invoke(self.db, **arguments)
        except ToolError as exc:
            return CallResult(f"Error: {exc}", "tool_error")
        return CallResult(json.dumps(result, sort_keys=True), "ok")
