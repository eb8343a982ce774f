"""Scripted tool-use agents served as OpenAI-compatible endpoints (Trajectory2Task sanity checks).

Both see only what a model sees: the system prompt, the tool schemas and the conversation with tool
results. They recognise the domain from the tool names and understand the user through the domain's
request phrasing (the openers and slot sentences tasks are written in), and they keep no state between
requests: everything is re-derived from the messages.

- ``ReferenceAgentPolicy`` follows the policy: asks for missing facts, reads the records a rule needs,
  refuses with the rule's reason, asks for confirmation, acts, reports the result. An upper bound.
- ``NaiveAgentPolicy`` acts at once: fills a missing fact with the first candidate it can read, never asks,
  never checks the policy.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from datasets.tool_use.domain import Domain, parse_value, render_value
from datasets.tool_use.domains import domain_for_tools
from datasets.tool_use.pipeline import harvest
from evaluation.baselines.server import tool_call
from evaluation.tool_use.verify import normalise


@dataclass
class Request:
    tool: str
    arguments: dict[str, Any]


@dataclass
class Conversation:
    """What an agent can know, rebuilt from the messages of one request."""

    identity: str | None = None
    request: Request | None = None
    # (tool name, arguments, output) of every answered call, in order; output is parsed JSON or an "Error: ..." string.
    calls: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    view: dict[str, dict[str, Any]] = field(default_factory=dict)  # records read so far, shaped like the database
    last_is_tool: bool = False
    confirmed_text: str = ""  # the agent's question the user just answered "yes" to


def _parse_user(domain: Domain, text: str, convo: Conversation) -> None:
    if match := domain.identity.pattern().search(text):
        convo.identity = match.group(1)
    for tool in domain.write_tools:
        if tool.intent and tool.intent.opener in text:
            keep = convo.request.arguments if convo.request and convo.request.tool == tool.name else {}
            convo.request = Request(tool.name, dict(keep))
    if convo.request is None:
        return
    tool = domain.tool(convo.request.tool)
    for param, slot in tool.intent.slots.items():  # type: ignore[union-attr]
        if match := slot.pattern().search(text):
            try:
                convo.request.arguments[param] = parse_value(match.group(1), tool.parameters["properties"][param])
            except ValueError:
                continue
    if domain.identity_param in tool.parameters["properties"] and convo.identity:
        convo.request.arguments.setdefault(domain.identity_param, convo.identity)


def read_conversation(domain: Domain, messages: list[dict[str, Any]]) -> Conversation:
    convo = Conversation()
    records = {t.name: t.record for t in domain.tools if t.record}
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "user":
            _parse_user(domain, str(message.get("content") or ""), convo)
        elif role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except json.JSONDecodeError:
                    arguments = {}
                pending[call.get("id", "")] = (function.get("name", ""), arguments)
        elif role == "tool" and message.get("tool_call_id") in pending:
            name, arguments = pending.pop(message["tool_call_id"])
            content = str(message.get("content") or "")
            output: Any = content if content.startswith("Error") else json.loads(content)
            convo.calls.append((name, arguments, output))
            if name in records and isinstance(output, dict):
                table, param = records[name]  # type: ignore[misc]
                convo.view.setdefault(table, {})[arguments.get(param)] = output
    convo.last_is_tool = bool(messages) and messages[-1].get("role") == "tool"
    if len(messages) >= 2 and messages[-1].get("role") == "user" and normalise(str(messages[-1].get("content") or "")).startswith("yes"):
        previous = messages[-2]
        if previous.get("role") == "assistant" and not previous.get("tool_calls"):
            convo.confirmed_text = str(previous.get("content") or "")
    return convo


def _summary(output: Any) -> str:
    if isinstance(output, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {render_value(v)}" for k, v in output.items())
    return str(output)


def _confirmation(request: Request) -> str:
    details = ", ".join(f"{k}={render_value(v)}" for k, v in sorted(request.arguments.items()))
    return f"To confirm: I will call {request.tool} with {details}. Shall I proceed? Please confirm (yes/no)."


class _ScriptedAgent(ABC):
    model_id = ""

    def reply(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> dict[str, Any]:
        names = {(t.get("function") or {}).get("name") for t in tools or []}
        domain = domain_for_tools(names)  # type: ignore[arg-type]
        if domain is None:
            return {"content": "Sorry, I cannot help with requests for this service."}
        convo = read_conversation(domain, messages)
        if convo.request is None:
            return {"content": "Hello! How can I help you today?"}
        request = convo.request
        if reply := self.fill(domain, convo, request):
            return reply
        done = [out for name, args, out in convo.calls if name == request.tool and args == request.arguments]
        if done:
            if not convo.last_is_tool:
                return {"content": "Is there anything else I can help you with today?"}
            if isinstance(done[-1], str):
                return {"content": f"I'm sorry, I was unable to complete that: {done[-1]}"}
            return {"content": f"Done. {_summary(done[-1])}"}
        return self.act(domain, convo, request)

    def fill(self, domain: Domain, convo: Conversation, request: Request) -> dict[str, Any] | None:
        """Complete the request's arguments in place, or return the message that must come first."""
        return None

    @abstractmethod
    def act(self, domain: Domain, convo: Conversation, request: Request) -> dict[str, Any]:
        """The next message for a request that has not been carried out yet."""

    @staticmethod
    def missing(domain: Domain, request: Request) -> list[str]:
        return [p for p in domain.tool(request.tool).parameters["required"] if p not in request.arguments]

    @staticmethod
    def call_once(convo: Conversation, name: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        if any(n == name and a == arguments for n, a, _ in convo.calls):
            return None
        return {"content": None, "tool_calls": [tool_call(name, arguments)]}


class ReferenceAgentPolicy(_ScriptedAgent):
    model_id = "t2t-reference-agent"

    def act(self, domain: Domain, convo: Conversation, request: Request) -> dict[str, Any]:
        tool = domain.tool(request.tool)
        missing = self.missing(domain, request)
        if missing:
            slot = tool.intent.slots[missing[0]]  # type: ignore[union-attr]
            return {"content": f"I can help with that. Could you tell me {slot.keywords[0]}?"}
        # Read every record the policy's rules for this action look at, one call at a time.
        readers = {t.record: t.name for t in domain.tools if t.record}
        for rule in domain.policy.rules:
            if rule.tool != request.tool:
                continue
            for table, argument in rule.reads:
                key = request.arguments.get(argument)
                reader = next(((name, param) for (t, param), name in readers.items() if t == table), None)
                if reader and key not in convo.view.get(table, {}):
                    if reply := self.call_once(convo, reader[0], {reader[1]: key}):
                        return reply
        broken = domain.policy.violations(convo.view, request.tool, request.arguments)
        if broken:
            return {"content": f"I'm sorry, but I cannot do that. {broken[0].message}"}
        question = _confirmation(request)
        if convo.confirmed_text == question:
            return {"content": None, "tool_calls": [tool_call(request.tool, request.arguments)]}
        return {"content": question}


class NaiveAgentPolicy(_ScriptedAgent):
    model_id = "t2t-naive-agent"

    def fill(self, domain: Domain, convo: Conversation, request: Request) -> dict[str, Any] | None:
        tool = domain.tool(request.tool)
        known = {domain.identity_param: convo.identity, **request.arguments}
        for param in self.missing(domain, request):
            slot = tool.intent.slots[param]  # type: ignore[union-attr]
            seen = [v for _, _, out in convo.calls for v in harvest(out, slot.source_key or param)]
            if seen:
                is_list = tool.parameters["properties"][param].get("type") == "array"
                request.arguments[param] = [seen[0]] if is_list else seen[0]
                continue
            # Nothing to guess from yet: read whatever the known facts allow, then guess.
            for reader in domain.tools:
                needed = reader.parameters["required"]
                if reader.kind == "read" and needed and all(known.get(p) for p in needed):
                    if reply := self.call_once(convo, reader.name, {p: known[p] for p in needed}):
                        return reply
            return {"content": "I could not complete your request with the information available."}
        return None

    def act(self, domain: Domain, convo: Conversation, request: Request) -> dict[str, Any]:
        return {"content": None, "tool_calls": [tool_call(request.tool, request.arguments)]}
