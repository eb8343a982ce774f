"""Trajectory2Task generation on tau2-bench's environments: explore -> goal -> scenario -> verify -> write.

1. **Explore**: seeded walks over a domain's read tools from one customer, branching on what the reads
   return (an order's status, its items, the customer's payment methods), each ending in a valid call of a
   write tool (``Write.explore``).
2. **Goal**: one to three such writes of the same customer on different records ("exchange two items and
   change the address"); they must replay in order, each breaking no policy rule.
3. **Scenario**: ``standard`` (everything stated); ``ambiguous`` (a deciding fact withheld, only when another
   record would also be a valid target, so guessing can change the wrong one); ``changing`` (a first goal
   the customer drops for a new one once the agent proposes it; only the final goal may persist);
   ``infeasible`` (a write pushed over exactly one policy rule, alone or beside an allowed part that must
   still be done). Phrasing comes from seeded pools: openers, one sentence per fact, greetings, personas.
4. **Verify** on a fresh database: gold writes replay cleanly and change it, the expected outputs come from
   the replayed results, the forbidden write breaks exactly its rule, a withheld fact is absent from the
   opening, a changing task's first goal is feasible and tells apart from the final one. Failures and
   repeated goals are dropped and counted.
5. **Write** tau2-format task files per scenario, ``split_tasks.json`` and a manifest (counts of tasks,
   tools and writes per split; per-scenario generated / verified / dropped).

Customers are split first (train / dev / test), so no customer and no goal crosses splits; write tools are
balanced within each scenario. Everything is a function of (domain, sizes, seed).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from datasets.tau2.bundle import SCRIPT_KEY
from datasets.tool_use.intents import Domain, Step, WalkAbort, Walker, Write
from datasets.tool_use.policy import DB
from evaluation.canonical import canonical_json
from evaluation.tau2.environment import Tau2Environment, load_environment
from evaluation.tau2.environment import get_domain as tau2_domain
from evaluation.tau2.replay import changed_records

if TYPE_CHECKING:
    from evaluation.client import EndpointClient

GENERATOR_VERSION = "2.0"
SCENARIOS = ("standard", "ambiguous", "changing", "infeasible")
SPLIT_FRACTIONS = (("train", 0.6), ("dev", 0.2), ("test", 0.2))
GOAL_SIZES = ((1, 0.5), (2, 0.35), (3, 0.15))  # writes per goal, and how often
SWITCH_LINES = ("Actually, I've changed my mind.", "Wait, scratch that.", "On second thought, forget that.",
                "Sorry, let me change my request.")
CONNECTORS = ("First,", "Also,", "And finally,")
COMMON_CONDUCT = ("Answer the agent's questions with the facts you know and confirm when it asks you to. If the agent says it "
                  "cannot do something, insist once; if it refuses again, accept it.")


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}

    def key(self) -> str:
        return canonical_json(self.as_dict())


@dataclass(frozen=True)
class Explored:
    """A valid write reached by a walk, with the walk."""

    user_id: str
    call: Call
    steps: tuple[Step, ...]

    @property
    def target(self) -> str:
        """The record the write changes: an order, a reservation, or the customer's profile."""
        args = self.call.arguments
        return str(args.get("order_id") or args.get("reservation_id") or args.get("user_id") or self.user_id)


# -- domains -----------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def get_domain(name: str) -> Domain:
    """The generator's view of a tau2 domain (``retail`` or ``airline``)."""
    if name == "retail":
        from datasets.tool_use.retail import make_domain
    elif name == "airline":
        from datasets.tool_use.airline import make_domain
    else:
        raise KeyError(f"unknown tool-use domain '{name}' (known: retail, airline)")
    return make_domain()


DOMAINS = ("retail", "airline")


# -- replaying calls ---------------------------------------------------------------------------------


@dataclass
class Replay:
    ok: bool
    problem: str
    env: Tau2Environment
    results: list[Any] = field(default_factory=list)


def scratch_environment(domain: Domain, calls: list[Call]) -> Tau2Environment:
    """An environment for replaying ``calls``: the initial database with only the records they can change
    copied (the orders or reservations they name, the customers who own them), so a replay costs
    microseconds where a fresh copy of the whole database costs tens of milliseconds. The generated writes
    change nothing else (products and flights are only read)."""
    base = load_db(domain)
    db = {table: dict(records) for table, records in base.items()}
    for call in calls:
        for table, key in (("orders", call.arguments.get("order_id")), ("reservations", call.arguments.get("reservation_id")),
                           ("users", call.arguments.get("user_id"))):
            record = base.get(table, {}).get(key) if isinstance(key, str) else None
            if record is None:
                continue
            db[table][key] = copy.deepcopy(record)
            owner = record.get("user_id")
            if table != "users" and owner in base["users"] and db["users"][owner] is base["users"][owner]:
                db["users"][owner] = copy.deepcopy(base["users"][owner])
    return Tau2Environment(tau2_domain(domain.name), db, domain.policy.text)


def replay(domain: Domain, calls: list[Call]) -> Replay:
    """``calls`` in order on the initial database; each must succeed and break no rule of the policy."""
    env = scratch_environment(domain, calls)
    out = Replay(True, "", env)
    for call in calls:
        broken = domain.policy.violations(env.db, call.name, call.arguments)
        if broken:
            return Replay(False, f"{call.name} breaks {broken[0].id}", env, out.results)
        result = env.call(call.name, call.arguments)
        if not result.ok:
            return Replay(False, f"{call.name} fails: {result.output}", env, out.results)
        out.results.append(json.loads(result.output) if result.output.startswith(("{", "[")) else result.output)
    return out


def explore(domain: Domain, env: Tau2Environment, rng: random.Random, user_id: str, write: Write) -> Explored | None:
    """One walk from ``user_id`` to a valid call of ``write`` (reads only, so ``env`` is shared)."""
    walker = Walker(env, rng, user_id)
    try:
        arguments = write.explore(walker)
    except WalkAbort:
        return None
    if arguments is None:
        return None
    call = Call(write.tool, arguments)
    if domain.policy.violations(env.db, call.name, call.arguments):
        return None
    return Explored(user_id, call, tuple(walker.steps))


# -- phrasing ----------------------------------------------------------------------------------------


def part_text(domain: Domain, call: Call, rng: random.Random, withheld: str = "") -> str:
    """One write as the customer asks for it: an opener and one sentence per stated fact."""
    write = domain.write(call.name)
    sentences = [rng.choice(write.openers)]
    sentences += [fact.sentence(call.arguments, rng) for name, fact in write.facts.items() if name != withheld]
    return " ".join(sentences)


def request_text(domain: Domain, calls: list[Call], rng: random.Random, withheld: tuple[int, str] | None = None) -> str:
    parts = [part_text(domain, call, rng, withheld[1] if withheld and withheld[0] == i else "") for i, call in enumerate(calls)]
    if len(parts) == 1:
        return parts[0]
    intro = rng.choice(("I have a few things to sort out today.", "There are several things I need help with.",
                        f"I need help with {len(parts)} things."))
    connectors = [*CONNECTORS[: len(parts) - 1], CONNECTORS[-1]]
    return " ".join([intro, *(f"{c} {_lower_first(p)}" for c, p in zip(connectors, parts))])


def _lower_first(sentence: str) -> str:
    """"Please cancel ..." -> "please cancel ...", but "I'd like ..." stays."""
    first = sentence.split(" ", 1)[0]
    return sentence if first == "I" or first.startswith("I'") else sentence[:1].lower() + sentence[1:]


# -- tasks -------------------------------------------------------------------------------------------


@dataclass
class Draft:
    """A task before verification."""

    scenario: str
    user_id: str
    gold: list[Call]
    opening: str
    restatement: str
    known: str
    instructions: str
    persona: str
    steps: list[Step]
    reveal: list[dict[str, Any]] = field(default_factory=list)
    switch: str = ""
    first_goal: list[Call] = field(default_factory=list)
    forbidden: Call | None = None
    rule: str = ""

    @property
    def lead_tool(self) -> str:
        """The write the scenario is built around (what tool balancing counts)."""
        return (self.forbidden or (self.first_goal or self.gold)[0]).name

    def goal_key(self) -> str:
        return canonical_json([[c.as_dict() for c in self.gold], self.forbidden and self.forbidden.as_dict(),
                               [c.as_dict() for c in self.first_goal]])


def _known_info(domain: Domain, db: DB, user_id: str, calls: list[Call], identity: str) -> str:
    facts = [identity]
    for call in calls:
        write = domain.write(call.name)
        facts += [f"{name.replace('_', ' ')}: {fact.value(call.arguments)}" for name, fact in write.facts.items()]
    return " ".join(facts[:1]) + ("\n" + "\n".join(facts[1:]) if len(facts) > 1 else "")


def _opening(domain: Domain, db: DB, user_id: str, request: str, rng: random.Random) -> tuple[str, str]:
    identity = domain.identify(db, user_id, rng)
    greeting = rng.choice(domain.greetings)
    return f"{greeting} {identity} {request}", identity


def draft_task(domain: Domain, db: DB, scenario: str, user_id: str, goal: list[Explored], rng: random.Random, *,
               withheld: tuple[int, str] | None = None, final: list[Explored] | None = None,
               forbidden: tuple[Call, str] | None = None) -> Draft:
    persona = rng.choice(domain.personas)
    asked = [e.call for e in goal]
    if forbidden is not None:
        asked = [forbidden[0], *asked]  # the refused write first, then the allowed part
    request = request_text(domain, asked, rng, withheld)
    opening, identity = _opening(domain, db, user_id, request, rng)
    restatement = "To be clear, here is what I need. " + request_text(domain, asked, rng, withheld)
    steps = [s for e in [*goal, *(final or [])] for s in e.steps]
    draft = Draft(scenario, user_id, [e.call for e in goal], opening, restatement, "", "", persona, steps)
    if withheld is not None:
        call = asked[withheld[0]]
        fact = domain.write(call.name).facts[withheld[1]]
        reply = fact.sentence(call.arguments, rng)
        draft.reveal = [{"fact": withheld[1], "nouns": list(fact.nouns), "reply": reply}]
        draft.instructions = f"Do not say \"{reply}\" at first; say it only when the agent asks for it. "
    if final is not None:
        draft.first_goal = draft.gold
        draft.gold = [e.call for e in final]
        draft.switch = f"{rng.choice(SWITCH_LINES)} {request_text(domain, draft.gold, rng)}"
        draft.instructions = f"When the agent proposes to do what you asked, change your mind and say: \"{draft.switch}\" "
        asked = [*asked, *draft.gold]
    if forbidden is not None:
        draft.forbidden, draft.rule = forbidden
    draft.known = _known_info(domain, db, user_id, asked, identity)
    return draft


def _task_id(domain: Domain, draft: Draft) -> str:
    return f"{domain.name}-{draft.scenario}-{hashlib.sha256(draft.goal_key().encode()).hexdigest()[:10]}"


def to_task(domain: Domain, draft: Draft, outputs: list[str], seed: int) -> dict[str, Any]:
    """The tau2-format task, with the scripted user's fields under ``user_script``."""
    basis = ["DB", "COMMUNICATE"]
    instructions: dict[str, Any] = {
        "domain": domain.name,
        "reason_for_call": draft.opening,
        "known_info": draft.known,
        # The same conduct in every scenario, so that how the customer reacts tells the agent nothing; only the
        # scenario's own event (a withheld fact, a change of mind) is added.
        "task_instructions": draft.instructions + COMMON_CONDUCT,
    }
    if draft.forbidden is not None:
        basis = ["DB", "PROHIBITED_ACTION"] + (["REQUIRED_ACTION"] if draft.gold else [])
        rule = domain.policy.rule(draft.rule)
        instructions["infeasible_reason"] = rule.message
        instructions["actions_should_not_taken"] = [{"tool_name": draft.forbidden.name, "arguments": draft.forbidden.arguments}]
        if draft.gold:
            instructions["actions_should_be_taken"] = [{"tool_name": c.name, "arguments": c.arguments} for c in draft.gold]
    script: dict[str, Any] = {"customer": draft.user_id, "opening": draft.opening, "restatement": draft.restatement}
    if draft.reveal:
        script["reveal"] = draft.reveal
    if draft.switch:
        script["switch"] = draft.switch
        script["first_goal"] = [c.as_dict() for c in draft.first_goal]
    if draft.rule:
        script["refusal_rule"] = draft.rule
        evidence = domain.policy.rule(draft.rule).facts(load_db(domain), draft.forbidden.arguments)  # type: ignore[union-attr]
        if evidence:
            script["refusal_evidence"] = list(evidence)
    return {
        "id": _task_id(domain, draft),
        "description": {"purpose": f"Generated {draft.scenario} task ({len(draft.gold)} write(s))",
                        "notes": f"Trajectory2Task generator {GENERATOR_VERSION}, seed {seed}"},
        "user_scenario": {"persona": f"You are {domain.display_name(load_db(domain), draft.user_id)}, {draft.persona}.",
                          "instructions": instructions},
        "evaluation_criteria": {
            "actions": [{"action_id": str(i), "requestor": "assistant", "name": c.name, "arguments": c.arguments}
                        for i, c in enumerate(draft.gold)],
            "communicate_info": outputs,
            "reward_basis": basis,
        },
        "type": draft.scenario,
        "trajectory": [{"name": s.name, "arguments": s.arguments} for s in draft.steps],
        SCRIPT_KEY: script,
    }


_DBS: dict[str, DB] = {}


def load_db(domain: Domain) -> DB:
    """The domain's initial database, read once per process (never mutated: walks only read)."""
    if domain.name not in _DBS:
        _DBS[domain.name] = load_environment(domain.name).db
    return _DBS[domain.name]


# -- verification ------------------------------------------------------------------------------------


def verify(domain: Domain, draft: Draft) -> tuple[list[str], list[str]]:
    """(problems, expected outputs) of a draft; no problems means keep it."""
    base = load_db(domain)
    gold = replay(domain, draft.gold)
    if not gold.ok:
        return [f"gold writes do not replay: {gold.problem}"], []
    goal_state = changed_records(base, gold.env.db)
    outputs: list[str] = []
    for call, result in zip(draft.gold, gold.results):
        outputs += domain.write(call.name).outputs(gold.env.db, result)
    problems = []
    if draft.gold and not goal_state:
        problems.append("the gold writes do not change the database")
    if draft.forbidden is not None:
        for state in (base, gold.env.db):  # refused before and after the allowed part alike
            broken = [r.id for r in domain.policy.violations(state, draft.forbidden.name, draft.forbidden.arguments)]
            if broken != [draft.rule]:
                problems.append(f"the forbidden write breaks {broken or 'no rule'}, not exactly {draft.rule}")
                break
    for fact in draft.reveal:
        if fact["reply"] in draft.opening:
            problems.append(f"withheld '{fact['fact']}' appears in the opening")
    if draft.first_goal:
        first = replay(domain, draft.first_goal)
        if not first.ok:
            problems.append(f"the first goal is not feasible ({first.problem}), so the switch tests nothing")
        elif changed_records(base, first.env.db) == goal_state:
            problems.append("the first goal reaches the same state as the final one")
        else:
            both = replay(domain, [*draft.first_goal, *draft.gold])
            if both.ok and changed_records(base, both.env.db) == goal_state:
                problems.append("doing both goals reaches the final state too")
    return problems, outputs


# -- optional paraphrase ------------------------------------------------------------------------------

_VALUE = re.compile(r"[#\w.+@-]*\d[#\w.+@-]*")


def paraphrase_opening(client: "EndpointClient", draft: Draft) -> bool:
    """Rewrite the opening line through an LLM endpoint, keeping every stated value verbatim.

    Returns whether the paraphrase was kept: one that drops a value, or leaks a withheld one, is refused.
    """
    original = draft.opening
    reply = client.chat([
        {"role": "system", "content": "Rewrite the customer's message so it sounds natural. Keep every id, amount, email, "
                                      "address and value exactly as written. Do not add facts. Reply with the message only."},
        {"role": "user", "content": original},
    ]).content.strip()
    withheld = [value for fact in draft.reveal for value in _VALUE.findall(fact["reply"])]
    if not reply or any(v not in reply for v in _VALUE.findall(original)) or any(w in reply for w in withheld):
        return False
    draft.opening = reply
    return True


# -- scenarios ---------------------------------------------------------------------------------------


def _pick_size(rng: random.Random) -> int:
    return rng.choices([size for size, _ in GOAL_SIZES], weights=[weight for _, weight in GOAL_SIZES])[0]


class Explorer:
    """Feasible writes per customer, explored lazily and kept (the walks are the expensive part)."""

    def __init__(self, domain: Domain, seed: int):
        self.domain = domain
        self.env = load_environment(domain.name)
        self.seed = seed
        self.cache: dict[tuple[str, str], list[Explored]] = {}
        self.counts = Counter[str]()

    def writes(self, user_id: str, tool: str, tries: int = 3) -> list[Explored]:
        key = (user_id, tool)
        if key not in self.cache:
            rng = random.Random(f"{self.seed}/{user_id}/{tool}")
            found: dict[str, Explored] = {}
            for _ in range(tries):
                self.counts["walks"] += 1
                explored = explore(self.domain, self.env, rng, user_id, self.domain.write(tool))
                if explored is None:
                    self.counts["dead_ends"] += 1
                elif explored.call.key() not in found:
                    found[explored.call.key()] = explored
            self.cache[key] = list(found.values())
        return self.cache[key]

    def goal(self, user_id: str, first_tool: str, size: int, rng: random.Random, avoid: set[str] = frozenset()) -> list[Explored]:
        """Up to ``size`` writes of one customer on distinct records, the first with ``first_tool``."""
        options = [e for e in self.writes(user_id, first_tool) if e.target not in avoid]
        if not options:
            return []
        goal = [rng.choice(options)]
        used = {goal[0].target, *avoid}
        tools = sorted(self.domain.write_tools)
        rng.shuffle(tools)
        for tool in tools:
            if len(goal) >= size:
                break
            more = [e for e in self.writes(user_id, tool) if e.target not in used]
            if more:
                goal.append(rng.choice(more))
                used.add(goal[-1].target)
        return goal


def _alternatives(domain: Domain, db: DB, explored: Explored, fact_name: str) -> bool:
    """Whether another value seen in the walk would also make a valid call (so guessing can go wrong)."""
    write = domain.write(explored.call.name)
    fact = write.facts[fact_name]
    if len(fact.params) != 1:
        return False
    param = fact.params[0]
    gold = explored.call.arguments[param]
    seen: list[Any] = []
    for step in explored.steps:
        if step.ok and step.output.startswith("{"):
            seen += _harvest(json.loads(step.output), param)
    for value in sorted({canonical_json(v) for v in seen}):
        candidate = json.loads(value)
        if isinstance(gold, list):
            candidate = [candidate] if not isinstance(candidate, list) else candidate
        if candidate == gold:
            continue
        call = Call(explored.call.name, {**explored.call.arguments, param: candidate})
        if not domain.policy.violations(db, call.name, call.arguments) and replay(domain, [call]).ok:
            return True
    return False


# Keys under which candidate values show up in read results, by argument name.
_SOURCE_KEYS = {"order_id": ("orders", "order_id"), "item_ids": ("item_id",), "payment_method_id": ("payment_methods", "id"),
                "reservation_id": ("reservations", "reservation_id")}


def _harvest(value: Any, param: str) -> list[Any]:
    keys = _SOURCE_KEYS.get(param, (param,))
    found: list[Any] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in keys and isinstance(inner, list):
                found += [v for v in inner if isinstance(v, str)]
            elif key in keys and isinstance(inner, dict):
                found += list(inner)
            elif key in keys and isinstance(inner, str):
                found.append(inner)
            else:
                found += _harvest(inner, param)
    elif isinstance(value, list):
        for inner in value:
            found += _harvest(inner, param)
    return found


# Customers tried for the least used tool before it gives way to the others this round.
TRIES_PER_TOOL = 40


def candidates(domain: Domain, explorer: Explorer, scenario: str, customers: list[str], rng: random.Random,
               balance: Counter[str]) -> Iterator[Draft]:
    """Endless drafts of ``scenario`` from ``customers``; the first write's tool is the least used so far.

    A tool no customer tried can reach in this scenario is counted as used once, so it cannot stall the
    others; drafting stops when no tool yields anything."""
    db = load_db(domain)
    tools = sorted(domain.write_tools)
    barren = 0
    while barren < len(tools):
        tool = min(tools, key=lambda t: (balance[t], rng.random()))
        for _ in range(TRIES_PER_TOOL):
            draft = draft_for(domain, explorer, db, scenario, rng.choice(customers), tool, rng)
            if draft is not None:
                barren = 0
                yield draft
                break
        else:
            barren += 1
            balance[tool] += 1


def draft_for(domain: Domain, explorer: Explorer, db: DB, scenario: str, user_id: str, tool: str,
               rng: random.Random) -> Draft | None:
    if scenario == "standard":
        goal = explorer.goal(user_id, tool, _pick_size(rng), rng)
        return draft_task(domain, db, scenario, user_id, goal, rng) if goal else None
    if scenario == "ambiguous":
        goal = explorer.goal(user_id, tool, min(_pick_size(rng), 2), rng)
        if not goal:
            return None
        deciding = [name for name, fact in domain.write(tool).facts.items() if fact.deciding]
        rng.shuffle(deciding)
        for name in deciding:
            if _alternatives(domain, db, goal[0], name):
                return draft_task(domain, db, scenario, user_id, goal, rng, withheld=(0, name))
        return None
    if scenario == "changing":
        first = explorer.goal(user_id, tool, 1, rng)
        if not first:
            return None
        final_tool = rng.choice(sorted(domain.write_tools))
        final = explorer.goal(user_id, final_tool, min(_pick_size(rng), 2), rng)
        if not final or any(e.call == first[0].call for e in final):
            return None
        return draft_task(domain, db, scenario, user_id, first, rng, final=final)
    # infeasible: a valid write pushed over one rule, alone or with an allowed part on another record
    base = explorer.goal(user_id, tool, 1, rng)
    write = domain.write(tool)
    if not base or write.break_args is None:
        return None
    broken = write.break_args(db, base[0].call.arguments, rng)
    if broken is None:
        return None
    forbidden = Call(tool, broken[0])
    target = str(broken[0].get("order_id") or broken[0].get("reservation_id") or user_id)
    allowed = explorer.goal(user_id, rng.choice(sorted(domain.write_tools)), 1, rng, avoid={target}) if rng.random() < 0.4 else []
    draft = draft_task(domain, db, scenario, user_id, allowed, rng, forbidden=(forbidden, broken[1]))
    draft.steps = [*base[0].steps, *draft.steps]
    return draft


# -- the pipeline ------------------------------------------------------------------------------------


@dataclass
class ScenarioReport:
    generated: int = 0
    verified: int = 0
    dropped: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.drop_reasons[reason] = self.drop_reasons.get(reason, 0) + 1


@dataclass
class Generation:
    domain: str
    seed: int
    tasks: dict[str, dict[str, list[dict[str, Any]]]]  # split -> scenario -> tasks
    report: dict[str, ScenarioReport]
    exploration: dict[str, int]
    customers: dict[str, int]  # split -> customers assigned


def split_customers(customers: list[str], seed: int) -> dict[str, list[str]]:
    """Customers to splits by a seeded shuffle, in the split fractions."""
    order = sorted(customers)
    random.Random(f"{seed}/customers").shuffle(order)
    out: dict[str, list[str]] = {}
    start = 0
    for i, (name, fraction) in enumerate(SPLIT_FRACTIONS):
        end = len(order) if i == len(SPLIT_FRACTIONS) - 1 else start + round(len(order) * fraction)
        out[name] = sorted(order[start:end])
        start = end
    return out


def generate_tasks(domain_name: str, test_per_scenario: int, seed: int, *,
                   progress: Callable[[int, int], None] | None = None, paraphraser: "EndpointClient | None" = None) -> Generation:
    """``test_per_scenario`` verified test tasks per scenario, train and dev in the split proportions.

    ``progress(done, total)`` is called as tasks are kept; ``paraphraser`` optionally rewrites opening lines
    through an endpoint (off by default, so generation is deterministic)."""
    domain = get_domain(domain_name)
    db = load_db(domain)
    explorer = Explorer(domain, seed)
    by_split = split_customers(domain.customers(db), seed)
    test_fraction = dict(SPLIT_FRACTIONS)["test"]
    quotas = {name: round(test_per_scenario * fraction / test_fraction) for name, fraction in SPLIT_FRACTIONS}
    total = sum(quotas.values()) * len(SCENARIOS)
    reports = {s: ScenarioReport() for s in SCENARIOS}
    tasks: dict[str, dict[str, list[dict[str, Any]]]] = {split: {s: [] for s in SCENARIOS} for split in quotas}
    seen: set[str] = set()
    done = 0
    for split, quota in quotas.items():
        for scenario in SCENARIOS:
            rng = random.Random(f"{seed}/{split}/{scenario}")
            balance = Counter[str]()
            report = reports[scenario]
            for draft in candidates(domain, explorer, scenario, by_split[split], rng, balance):
                if len(tasks[split][scenario]) >= quota:
                    break
                report.generated += 1
                # One task per goal across scenarios and splits, and one per final goal within a scenario (a
                # changing task differs from another only by its first goal otherwise).
                keys = {draft.goal_key(), canonical_json([scenario, [c.as_dict() for c in draft.gold],
                                                          draft.forbidden and draft.forbidden.as_dict()])}
                if keys & seen:
                    report.drop("repeated goal")
                    continue
                problems, outputs = verify(domain, draft)
                if problems:
                    report.drop(problems[0].split(":")[0].split(" (")[0])
                    continue
                if paraphraser is not None and not paraphrase_opening(paraphraser, draft):
                    report.drop("paraphrase changed the facts")
                    continue
                seen |= keys
                balance[draft.lead_tool] += 1
                tasks[split][scenario].append(to_task(domain, draft, outputs, seed))
                report.verified += 1
                done += 1
                if progress:
                    progress(done, total)
    return Generation(domain.name, seed, tasks, reports, dict(explorer.counts), {s: len(c) for s, c in by_split.items()})


def _writes(task: dict[str, Any]) -> list[str]:
    return [a["name"] for a in task["evaluation_criteria"]["actions"]]


def write_folder(generation: Generation, out_dir: str | Path) -> dict[str, Any]:
    """Write ``<out_dir>/<domain>/``: ``tasks_<scenario>.json``, ``split_tasks.json`` and ``manifest.json``."""
    from evaluation.tau2.replay import read_domain_tasks
    from evaluation.tau2.tasks import write_tasks
    import io

    folder = Path(out_dir) / generation.domain
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for scenario in SCENARIOS:
        rows = [t for split in generation.tasks.values() for t in split[scenario]]
        rows.sort(key=lambda t: t["id"])
        stream = io.StringIO(json.dumps(rows))
        stream.name = f"tasks_{scenario}.json"
        path = folder / stream.name
        write_tasks(read_domain_tasks(generation.domain, stream), path)  # checked on the way out
        files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    splits = {split: sorted(t["id"] for rows in by_scenario.values() for t in rows) for split, by_scenario in generation.tasks.items()}
    (folder / "split_tasks.json").write_text(json.dumps(splits, indent=4) + "\n", encoding="utf-8")
    manifest = {
        "benchmark": "trajectory2task",
        "domain": generation.domain,
        "version": GENERATOR_VERSION,
        "seed": generation.seed,
        "files": files,
        "customers": generation.customers,
        "counts": {split: {s: len(rows) for s, rows in by_scenario.items()} for split, by_scenario in generation.tasks.items()},
        "writes_per_task": {split: dict(sorted(Counter(len(_writes(t)) for rows in by_scenario.values() for t in rows).items()))
                            for split, by_scenario in generation.tasks.items()},
        "tools": {split: dict(sorted(Counter(name for rows in by_scenario.values() for t in rows
                                             for name in [*_writes(t), *(p["tool_name"] for p in t["user_scenario"]["instructions"].get("actions_should_not_taken", []))]).items()))
                  for split, by_scenario in generation.tasks.items()},
        "report": {s: asdict(r) for s, r in generation.report.items()},
        "exploration": generation.exploration,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
