"""Scripted Trajectory2Task agents served as OpenAI-compatible endpoints (sanity checks of the benchmark).

They see only what a model sees: the system prompt (tau2's policy), the tool schemas (retail and airline
are told apart by their tool names) and the conversation with tool results. They keep no state between
requests: every reply is re-derived from the messages. They understand the customer through the domain's
phrasing pools (``datasets.tool_use.intents``): an opener per write tool starts each part of a request,
a fact is read with ``Fact.patterns()``, a restatement repeats the request, and a switch line replaces it.

- ``ReferenceAgentPolicy`` follows the policy, an upper bound: authenticates, asks for a missing fact (one
  per question, in the fact's own words), reads what the policy's rules need and checks them as code,
  derives the arguments the customer does not state, lists each write and waits for a "yes", reports the
  figures the task expects, and refuses a write that breaks a rule with that rule's message once the
  allowed parts are done (the customer ends the call once the goal is reached, so the refusal is said with
  the last report).
- ``NaiveAgentPolicy`` acts at once: never asks or confirms, fills a missing fact with the first candidate
  it can read, never checks the policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from datasets.tool_use.airline import FREE_BAGS
from datasets.tool_use.generator import DOMAINS, SWITCH_LINES, get_domain
from datasets.tool_use.intents import Domain, Fact
from datasets.tool_use.policy import DB, Rule
from datasets.tool_use.retail import ADDRESS_PARAMS
from datasets.tool_use.text import normalise, render_value
from evaluation.baselines.server import tool_call
from evaluation.tau2.environment import load_environment

Message = dict[str, Any]
Reply = dict[str, Any]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NAME_ZIP = re.compile(r"(?:I'm|My name is|This is) ([A-Z][\w'-]*) ([A-Z][\w' -]*?)(?:,| and my) zip(?: code)?(?: is)? (\d{5})")
_USER_ID = re.compile(r"(?:user id(?: is)?|find me as) ([a-z0-9_]+)", re.IGNORECASE)
# A yes to a proposal; "okay, I understand" after a refusal is not one.
_AFFIRMATIVE = ("yes", "yeah", "yep", "sure", "go ahead", "please go ahead", "please do")


# -- the domain, as the tool names give it ---------------------------------------------------------------


def domain_for_tools(names: set[str]) -> Domain | None:
    """The generated domain whose write tools the request offers (tau2's retail and airline share none)."""
    for name in DOMAINS:
        domain = get_domain(name)
        if domain.write_tools <= names:
            return domain
    return None


@lru_cache(maxsize=None)
def _openers(domain_name: str) -> tuple[tuple[str, str], ...]:
    """(casefolded opener, tool), longest first, so that no opener is found inside a longer one."""
    domain = get_domain(domain_name)
    pairs = [(opener.casefold(), write.tool) for write in domain.writes for opener in write.openers]
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


@lru_cache(maxsize=None)
def _schema_types(domain_name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The tool parameters' JSON schemas (tau2's, which every request carries), by (tool, parameter)."""
    return {(schema["function"]["name"], param): prop for schema in load_environment(domain_name).tool_schemas()
            for param, prop in schema["function"]["parameters"]["properties"].items()}


def _fact_arguments(domain: Domain, tool: str, fact: Fact, spoken: str) -> dict[str, Any] | None:
    """The tool arguments of a fact as the customer said it, or None when the words do not read as one.

    A fact with its own way of speaking (an address, passengers, a cabin) is read back by its shape; any
    other is one argument typed by the tool's schema. The reading counts only if speaking it again gives the
    same words."""
    params = fact.params
    try:
        if params == ADDRESS_PARAMS:
            address1, address2, city, state_zip, country = spoken.split(", ")
            state, zip_code = state_zip.rsplit(" ", 1)
            arguments: dict[str, Any] = {"address1": address1, "address2": address2, "city": city, "state": state,
                                         "country": country, "zip": zip_code}
        elif params == ("passengers",):
            passengers = []
            for person in spoken.split("; "):
                name, born = person.split(", born ")
                first, last = name.split(" ", 1)
                passengers.append({"first_name": first, "last_name": last, "dob": born})
            arguments = {"passengers": passengers}
        elif params == ("cabin",):
            arguments = {"cabin": spoken.replace(" ", "_")}
        else:
            kind = _schema_types(domain.name)[(tool, params[0])].get("type")
            value: Any = spoken.split(", ") if kind == "array" else int(spoken) if kind == "integer" else spoken
            arguments = {params[0]: value}
    except (ValueError, KeyError):
        return None
    return arguments if fact.value(arguments) == spoken else None


# -- what the customer asked for ---------------------------------------------------------------------------


@dataclass
class Part:
    """One write the customer asked for, with the facts stated so far (fact name -> its arguments)."""

    tool: str
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def missing(self, domain: Domain) -> list[str]:
        return [name for name in domain.write(self.tool).facts if name not in self.facts]

    def stated(self) -> dict[str, Any]:
        return {param: value for arguments in self.facts.values() for param, value in arguments.items()}


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _read_facts(domain: Domain, part: Part, text: str, only: list[str] | None = None) -> bool:
    """Add to ``part`` the facts of its tool that some sentence of ``text`` states; whether any was found."""
    found = False
    facts = domain.write(part.tool).facts
    for sentence in _sentences(text):
        for name in only if only is not None else facts:
            fact = facts[name]
            for pattern in fact.patterns():
                match = pattern.fullmatch(sentence)
                arguments = match and _fact_arguments(domain, part.tool, fact, match.group(1))
                if arguments:
                    part.facts[name] = arguments
                    found = True
                    break
    return found


def parse_request(domain: Domain, text: str) -> list[Part]:
    """The parts of a request, in order: each starts at one of its tool's openers ("First, ... Also, ...")."""
    folded = text.casefold()
    starts: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for opener, tool in _openers(domain.name):
        for match in re.finditer(re.escape(opener), folded):
            span = (match.start(), match.end())
            if not any(s < span[1] and span[0] < e for s, e in taken):
                taken.append(span)
                starts.append((match.start(), tool))
    starts.sort()
    parts = []
    for i, (start, tool) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        part = Part(tool)
        _read_facts(domain, part, text[start:end])
        parts.append(part)
    return parts


def _identity(domain: Domain, text: str) -> dict[str, str]:
    """How the customer said who they are: an email, a name and zip code, or a user id."""
    if domain.name == "airline":
        match = _USER_ID.search(text)
        return {"user_id": match.group(1)} if match else {}
    if match := _EMAIL.search(text):
        return {"email": match.group(0).rstrip(".")}
    if match := _NAME_ZIP.search(text):
        return {"first_name": match.group(1), "last_name": match.group(2), "zip": match.group(3)}
    return {}


def _merge(current: list[Part], new: list[Part]) -> list[Part]:
    """A restated request keeps the facts learnt meanwhile; a different one replaces the old."""
    if [p.tool for p in current] != [p.tool for p in new]:
        return new
    for old, part in zip(current, new):
        if any(old.facts.get(name, arguments) != arguments for name, arguments in part.facts.items()):
            return new
    return [Part(old.tool, {**old.facts, **part.facts}) for old, part in zip(current, new)]


# -- the conversation, re-read on every request ------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """A tool call that was answered."""

    name: str
    arguments: dict[str, Any]
    output: Any  # parsed JSON, or the text (an "Error: ..." when it failed)
    ok: bool


@dataclass
class Conversation:
    domain: Domain
    identity: dict[str, str] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)
    calls: list[Done] = field(default_factory=list)
    view: DB = field(default_factory=dict)  # records read so far, shaped like the database
    user_id: str = ""  # who the customer is, once a tool said so
    unreported: list[Done] = field(default_factory=list)  # writes since the agent last spoke
    agent_texts: list[str] = field(default_factory=list)
    last_user: str = ""
    last_is_tool: bool = False

    def record(self, table: str, key: str) -> dict[str, Any] | None:
        return self.view.get(table, {}).get(key)

    def attempted(self, name: str, arguments: dict[str, Any]) -> Done | None:
        return next((c for c in reversed(self.calls) if c.name == name and c.arguments == arguments), None)

    def confirmed(self, proposal: str) -> bool:
        """The customer said yes to this very proposal, just now."""
        return (bool(self.agent_texts) and proposal in self.agent_texts[-1] and not self.last_is_tool
                and normalise(self.last_user).startswith(_AFFIRMATIVE))


def _store(convo: Conversation, name: str, arguments: dict[str, Any], output: Any) -> None:
    """Keep what a read (or a write's result) shows of the database."""
    view = convo.view
    if isinstance(output, dict):
        if "order_id" in output and "items" in output:
            view.setdefault("orders", {})[output["order_id"]] = output
        elif "reservation_id" in output and "flights" in output:
            view.setdefault("reservations", {})[output["reservation_id"]] = output
        elif "variants" in output and "product_id" in output:
            view.setdefault("products", {})[output["product_id"]] = output
        elif "payment_methods" in output and "user_id" in output:
            view.setdefault("users", {})[output["user_id"]] = output
            convo.user_id = convo.user_id or output["user_id"]
    elif name == "get_flight_status" and isinstance(output, str):
        flight = view.setdefault("flights", {}).setdefault(arguments.get("flight_number"), {"dates": {}})
        flight["dates"][arguments.get("date")] = {"status": output}
    elif name.startswith("find_user_id") and isinstance(output, str):
        convo.user_id = output


def read_conversation(domain: Domain, messages: list[Message]) -> Conversation:
    convo = Conversation(domain)
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    writes = domain.write_tools
    for message in messages:
        role = message.get("role")
        content = str(message.get("content") or "")
        if role == "user":
            convo.last_user = content
            convo.identity = convo.identity or _identity(domain, content)
            request = parse_request(domain, content)
            if request:
                switched = content.startswith(SWITCH_LINES)
                convo.parts = request if switched or not convo.parts else _merge(convo.parts, request)
            else:  # an answer: a fact the request lacked
                for part in convo.parts:
                    if (missing := part.missing(domain)) and _read_facts(domain, part, content, missing):
                        break
        elif role == "assistant":
            if content and not message.get("tool_calls"):
                convo.agent_texts.append(content)
                convo.unreported = []
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except json.JSONDecodeError:
                    arguments = {}
                pending[call.get("id", "")] = (str(function.get("name") or ""), arguments if isinstance(arguments, dict) else {})
        elif role == "tool" and message.get("tool_call_id") in pending:
            name, arguments = pending.pop(message["tool_call_id"])
            ok = not content.startswith("Error")
            try:
                output: Any = json.loads(content) if ok else content
            except json.JSONDecodeError:
                output = content
            done = Done(name, arguments, output, ok)
            convo.calls.append(done)
            if ok:
                _store(convo, name, arguments, output)
            if name in writes:
                convo.unreported.append(done)
    convo.last_is_tool = bool(messages) and messages[-1].get("role") == "tool"
    return convo


# -- what a write needs: the records to read, and the arguments the customer does not state ----------------


def _authenticate(convo: Conversation) -> tuple[str, dict[str, Any]] | None:
    """The call that tells who the customer is, then the one that reads their profile (None once both are
    done, or when the identity the customer gave was not found)."""
    if not convo.user_id:
        identity = convo.identity
        if "email" in identity:
            step = "find_user_id_by_email", {"email": identity["email"]}
        elif "zip" in identity:
            step = "find_user_id_by_name_zip", identity
        elif "user_id" in identity:
            step = "get_user_details", identity
        else:
            return None
        return None if convo.attempted(*step) else step
    if convo.record("users", convo.user_id) is None:
        return "get_user_details", {"user_id": convo.user_id}
    return None


# Writes whose arguments the customer does not state in full: the reservation (and for bags the member) tells.
_DERIVED = ("update_reservation_baggages", "update_reservation_flights")


def _reads(convo: Conversation, tool: str, stated: dict[str, Any], *, rules: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The reads not made yet that a write's derived arguments need and, with ``rules``, that its policy rules
    need: the order or reservation, its owner, the products of items to swap, the status of its flights."""
    if not rules and tool not in _DERIVED:
        return []
    needed: list[tuple[str, dict[str, Any]]] = []
    if order_id := stated.get("order_id"):
        order = convo.record("orders", order_id)
        if order is None:
            return [("get_order_details", {"order_id": order_id})]
        if convo.record("users", order["user_id"]) is None:
            needed.append(("get_user_details", {"user_id": order["user_id"]}))
        products = {item["item_id"]: item["product_id"] for item in order["items"]}
        if "new_item_ids" in stated:  # the rule compares the new item with the old one's product
            needed += [("get_product_details", {"product_id": products[i]}) for i in dict.fromkeys(stated.get("item_ids", []))
                       if i in products and convo.record("products", products[i]) is None]
    if reservation_id := stated.get("reservation_id"):
        reservation = convo.record("reservations", reservation_id)
        if reservation is None:
            return [("get_reservation_details", {"reservation_id": reservation_id})]
        if convo.record("users", reservation["user_id"]) is None:
            needed.append(("get_user_details", {"user_id": reservation["user_id"]}))
        if rules and tool in ("cancel_reservation", "update_reservation_flights"):  # whether a flight was flown or cancelled
            statuses = convo.view.get("flights", {})
            needed += [("get_flight_status", {"flight_number": f["flight_number"], "date": f["date"]}) for f in reservation["flights"]
                       if f["date"] not in statuses.get(f["flight_number"], {}).get("dates", {})]
    return needed


def _arguments(convo: Conversation, part: Part) -> dict[str, Any]:
    """The write's arguments: what the customer stated, plus what the policy and the records determine."""
    arguments = part.stated()
    write = convo.domain.write(part.tool)
    if write.user_param:
        arguments[write.user_param] = convo.user_id
    reservation = convo.record("reservations", arguments.get("reservation_id", ""))
    if part.tool == "update_reservation_flights" and reservation:  # the cabin changes on every flight
        arguments["flights"] = [{"flight_number": f["flight_number"], "date": f["date"]} for f in reservation["flights"]]
    if part.tool == "update_reservation_baggages" and reservation and "total_baggages" in arguments:
        user = convo.record("users", reservation["user_id"]) or {}
        free = FREE_BAGS.get(user.get("membership", ""), {}).get(reservation["cabin"], 0) * len(reservation["passengers"])
        arguments["nonfree_baggages"] = max(0, arguments["total_baggages"] - free)
    return {k: arguments[k] for k in sorted(arguments)}


# -- the agent's words ----------------------------------------------------------------------------------


def _label(tool: str) -> str:
    return tool.replace("_", " ")


def _details(arguments: dict[str, Any]) -> str:
    def spoken(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k}: {v}" for k, v in value.items())
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return "; ".join(spoken(v) for v in value)
        return render_value(value)

    return "; ".join(f"{k.replace('_', ' ')}: {spoken(v)}" for k, v in arguments.items())


def proposal(tool: str, arguments: dict[str, Any]) -> str:
    return f"Here is what I will do: {_label(tool)} with {_details(arguments)}. Shall I proceed? Please confirm (yes/no)."


def report(domain: Domain, done: Done) -> str:
    """What the customer is told after a write: the figures the task expects (``Write.outputs``)."""
    if not done.ok:
        return f"The {_label(done.name)} did not go through: {done.output}"
    figures = domain.write(done.name).outputs({}, done.output) if isinstance(done.output, dict) else []
    return f"Done: {_label(done.name)} completed." + (f" Amount: {', '.join(figures)}." if figures else "")


_ORDINALS = ("first", "second", "third", "fourth", "fifth")


def question(domain: Domain, parts: list[Part], index: int, fact_name: str) -> str:
    """One fact per question, in the fact's own words; a request of several parts says which part."""
    noun = domain.write(parts[index].tool).facts[fact_name].nouns[0]
    where = f"For your {_ORDINALS[index]} request, which" if len(parts) > 1 else "Which"
    return f"{where} {noun} do you mean?"


def refusal(part: Part, rule: Rule, explanation: str = "") -> str:
    """A refusal under ``rule``: its explanation for this request (``Rule.explain``), or the rule's bare message."""
    return f"I'm sorry, but I cannot do the {_label(part.tool)}. {explanation or rule.message}"


def say(*texts: str) -> Reply:
    return {"content": " ".join(t for t in texts if t)}


def call(name: str, arguments: dict[str, Any]) -> Reply:
    return {"content": None, "tool_calls": [tool_call(name, arguments)]}


# -- the agents -------------------------------------------------------------------------------------------


class ScriptedAgent:
    """Reads the conversation and the tool schemas; ``next_message`` decides."""

    model_id = ""

    def reply(self, messages: list[Message], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> Reply:
        names = {str((t.get("function") or {}).get("name")) for t in tools or []}
        domain = domain_for_tools(names)
        if domain is None:
            return say("Sorry, I cannot help with requests for this service.")
        convo = read_conversation(domain, messages)
        if not convo.parts:
            return say("Hello! How can I help you today?")
        return self.next_message(convo)

    def next_message(self, convo: Conversation) -> Reply:
        raise NotImplementedError

    @staticmethod
    def reports(convo: Conversation) -> list[str]:
        return [report(convo.domain, done) for done in convo.unreported]


class ReferenceAgentPolicy(ScriptedAgent):
    model_id = "t2t-reference-agent"

    def next_message(self, convo: Conversation) -> Reply:
        domain = convo.domain
        if step := _authenticate(convo):
            return call(*step)
        if not convo.user_id:
            return say("Could you tell me who you are (your email, or your name and zip code, or your user id)?")
        reports = self.reports(convo)
        refusals: list[str] = []
        for index, part in enumerate(convo.parts):
            if missing := part.missing(domain):
                return say(*reports, question(domain, convo.parts, index, missing[0]))
            if reads := _reads(convo, part.tool, part.stated()):
                return call(*reads[0])
            arguments = _arguments(convo, part)
            if convo.attempted(part.tool, arguments):
                continue
            if broken := domain.policy.violations(convo.view, part.tool, arguments):
                refusals.append(refusal(part, broken[0], broken[0].explain(convo.view, arguments)))
                continue
            proposed = proposal(part.tool, arguments)
            if convo.confirmed(proposed):
                return call(part.tool, arguments)
            return say(*reports, proposed)
        if refusals:
            return say(*reports, *refusals)
        return say(*reports, "Is there anything else I can help you with?")


class NaiveAgentPolicy(ScriptedAgent):
    model_id = "t2t-naive-agent"

    def next_message(self, convo: Conversation) -> Reply:
        for part in convo.parts:
            if guess := self.guess_missing(convo, part):
                return guess
            if convo.domain.write(part.tool).user_param and (step := _authenticate(convo)):
                return call(*step)
            if reads := _reads(convo, part.tool, part.stated(), rules=False):
                return call(*reads[0])
            arguments = _arguments(convo, part)
            if not convo.attempted(part.tool, arguments):
                return call(part.tool, arguments)
        return say(*self.reports(convo)) if convo.unreported else say("Done.")

    def guess_missing(self, convo: Conversation, part: Part) -> Reply | None:
        """Fill the part's missing facts with the first candidates the records show (a read when needed first)."""
        for name in part.missing(convo.domain):
            if step := _authenticate(convo):
                return call(*step)
            (param,) = convo.domain.write(part.tool).facts[name].params
            value = _first_candidate(convo, param, part.stated())
            if value is None:
                order_id = part.stated().get("order_id")
                if order_id and convo.record("orders", order_id) is None:
                    return call("get_order_details", {"order_id": order_id})
                return say("I could not complete your request with the information available.")
            part.facts[name] = {param: value}
        return None


def _first_candidate(convo: Conversation, param: str, stated: dict[str, Any]) -> Any:
    user = convo.record("users", convo.user_id) or {}
    if param == "order_id":
        return next(iter(user.get("orders") or []), None)
    if param == "reservation_id":
        return next(iter(user.get("reservations") or []), None)
    if param in ("payment_method_id", "payment_id"):
        return next(iter(user.get("payment_methods") or {}), None)
    if param == "item_ids":
        order = convo.record("orders", stated.get("order_id", ""))
        return [order["items"][0]["item_id"]] if order and order["items"] else None
    return None
