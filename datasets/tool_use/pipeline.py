"""Trajectory2Task generation: explore -> convert -> adapt intent -> verify -> write splits.

1. **Explore**: seeded walks over a domain's read tools from one customer, each ending in a write
   (``Tool.explore``). A walk whose write succeeds and breaks no policy rule is *feasible*; one the policy
   refuses (but the tool would accept) is raw material for infeasible tasks.
2. **Convert** a walk into a user-facing task (persona, known facts, instruction, scripted lines).
3. **Adapt** it to a scenario: ``standard``; ``ambiguous`` (a deciding fact withheld, only when another
   record would also be a valid target); ``changing`` (a second feasible goal of the same customer replaces
   the first at the first confirmation); ``infeasible`` (exactly one policy rule forbids the request).
4. **Verify** every task on a fresh database: gold actions replay without errors or violations, the
   expected outputs come from the replayed results, the forbidden action is refused by the policy code,
   the withheld fact is really withheld and really decides. Failures and duplicates are dropped and counted.
5. **Write** train/dev/test JSONL per domain with a manifest (counts, sha256, seed).

Everything is a function of (domain, n, seed): the same call writes byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from datasets.tool_use.domain import DB, Domain, render_value
from datasets.tool_use.domains import get_domain
from datasets.tool_use.env import ToolEnv, db_hash, initial_db
from evaluation.canonical import canonical_json

if TYPE_CHECKING:
    from evaluation.client import EndpointClient

GENERATOR_VERSION = "1.0"
SCENARIOS = ("standard", "ambiguous", "changing", "infeasible")
SPLIT_FRACTIONS = (("train", 0.6), ("dev", 0.2), ("test", 0.2))
STOP = "###STOP###"


class WalkAbort(Exception):
    """A walk reached a dead end (a tool error, nothing to choose from)."""


@dataclass(frozen=True)
class Step:
    name: str
    arguments: dict[str, Any]
    output: str


class Walker:
    """What a write tool's ``explore`` hook sees: the customer, a seeded RNG and read-tool calls."""

    def __init__(self, env: ToolEnv, rng: random.Random, user_id: str):
        self.env = env
        self.rng = rng
        self.user_id = user_id
        self.steps: list[Step] = []

    def call(self, name: str, **arguments: Any) -> Any:
        result = self.env.call(name, arguments)
        self.steps.append(Step(name, arguments, result.output))
        if not result.ok:
            raise WalkAbort(result.output)
        return json.loads(result.output)

    def choice(self, options: list[Any]) -> Any:
        if not options:
            raise WalkAbort("nothing to choose from")
        return self.rng.choice(options)

    def sample(self, options: list[Any]) -> list[Any]:
        """A non-empty subset, in the original order."""
        if not options:
            raise WalkAbort("nothing to choose from")
        picked = set(self.rng.sample(range(len(options)), k=self.rng.randint(1, len(options))))
        return [o for i, o in enumerate(options) if i in picked]


@dataclass(frozen=True)
class Action:
    name: str
    arguments: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Trajectory:
    user_id: str
    user_name: str
    steps: tuple[Step, ...]
    action: Action
    result: Any  # the write's parsed result; None when the policy refuses the action
    violations: tuple[str, ...]  # keywords of the broken rules


@dataclass(frozen=True)
class Attempt:
    """What an action does to a database: whether the tool accepts it, which rules it breaks, the result."""

    ok: bool
    violations: tuple[str, ...]
    result: Any
    db: DB | None

    @property
    def feasible(self) -> bool:
        return self.ok and not self.violations


def attempt(domain: Domain, db: DB, action: Action) -> Attempt:
    violations = tuple(r.keyword for r in domain.policy.violations(db, action.name, action.arguments))
    env = ToolEnv(domain, json.loads(canonical_json(db)))
    outcome = env.call(action.name, action.arguments)
    if not outcome.ok:
        return Attempt(False, violations, outcome.output, None)
    return Attempt(True, violations, json.loads(outcome.output), env.db)


def explore(domain: Domain, db: DB, rng: random.Random) -> Trajectory | None:
    """One seeded walk; None when it dead-ends or its write makes no sense to the tool."""
    user_id, user_name = rng.choice(domain.people(db))
    tool = rng.choice(domain.write_tools)
    walker = Walker(ToolEnv(domain, json.loads(canonical_json(db))), rng, user_id)
    try:
        arguments = tool.explore(walker)
    except WalkAbort:
        return None
    if arguments is None:
        return None
    action = Action(tool.name, arguments)
    tried = attempt(domain, walker.env.db, action)
    if not tried.ok:
        return None
    steps = (*walker.steps, Step(action.name, arguments, json.dumps(tried.result, sort_keys=True) if tried.feasible else ""))
    return Trajectory(user_id, user_name, steps, action, tried.result if tried.feasible else None, tried.violations)


# -- conversion ---------------------------------------------------------------------------------------


def request_text(domain: Domain, action: Action, withheld: tuple[str, ...] = ()) -> str:
    """The user's request: the intent's opener and one sentence per stated argument."""
    intent = domain.tool(action.name).intent
    assert intent is not None, f"{action.name} is not a write tool"
    sentences = [intent.opener]
    for param, slot in intent.slots.items():
        if param not in withheld and param != domain.identity_param:
            sentences.append(slot.render(action.arguments[param]))
    return " ".join(sentences)


def harvest(value: Any, key: str) -> list[Any]:
    """Scalar values found under ``key`` anywhere in a parsed tool result (lists are flattened)."""
    found: list[Any] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and not isinstance(v, (dict, list)):
                found.append(v)
            elif k == key and isinstance(v, list):
                found.extend(x for x in v if not isinstance(x, (dict, list)))
            else:
                found.extend(harvest(v, key))
    elif isinstance(value, list):
        for v in value:
            found.extend(harvest(v, key))
    return found


def withholdable(domain: Domain, db: DB, trajectory: Trajectory) -> list[tuple[str, list[Any]]]:
    """Deciding arguments that another record seen in the walk could also validly fill.

    Only those make a request truly ambiguous: an agent that guesses may change the wrong record.
    """
    tool = domain.tool(trajectory.action.name)
    assert tool.intent is not None
    seen = [json.loads(s.output) for s in trajectory.steps[:-1] if s.output.startswith(("{", "["))]
    out = []
    for param, slot in tool.intent.slots.items():
        if not slot.deciding or param == domain.identity_param:
            continue
        gold = trajectory.action.arguments[param]
        values = sorted({v for result in seen for v in harvest(result, slot.source_key or param)}, key=str)
        alternatives = []
        for value in values:
            candidate = [value] if isinstance(gold, list) else value
            if candidate == gold:
                continue
            if attempt(domain, db, Action(tool.name, {**trajectory.action.arguments, param: candidate})).feasible:
                alternatives.append(candidate)
        if alternatives:
            out.append((param, alternatives))
    return out


@dataclass
class Task:
    id: str
    domain: str
    scenario: str
    db_seed: int
    initial_db_hash: str
    user: dict[str, Any]
    instruction: str
    script: dict[str, Any]
    gold_actions: list[dict[str, Any]]
    expected_outputs: list[str]
    expected_db_hash: str
    forbidden_actions: list[dict[str, Any]] = field(default_factory=list)
    walk: list[dict[str, Any]] = field(default_factory=list)  # the exploration the task came from
    version: str = GENERATOR_VERSION

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def _base_task(domain: Domain, scenario: str, seed: int, start_hash: str, trajectory: Trajectory, persona: str,
               gold: list[Action], expected_outputs: list[str], script: dict[str, Any], instruction: str,
               forbidden: tuple[Action, ...] = ()) -> Task:
    facts = {domain.identity_param: trajectory.user_id, **trajectory.action.arguments}
    key = canonical_json([scenario, [a.as_dict() for a in gold], [a.as_dict() for a in forbidden], script])
    return Task(
        id=f"{domain.name}-{scenario}-{hashlib.sha256(key.encode()).hexdigest()[:10]}",
        domain=domain.name,
        scenario=scenario,
        db_seed=seed,
        initial_db_hash=start_hash,
        user={"id": trajectory.user_id, "name": trajectory.user_name, "persona": persona, "known_facts": facts},
        instruction=instruction,
        script=script,
        gold_actions=[a.as_dict() for a in gold],
        expected_outputs=expected_outputs,
        expected_db_hash="",  # filled by verification, from the replay
        forbidden_actions=[a.as_dict() for a in forbidden],
        walk=[{"name": s.name, "arguments": s.arguments} for s in trajectory.steps],
    )


def _greeting(domain: Domain, trajectory: Trajectory) -> str:
    return f"Hi, I'm {trajectory.user_name}. {domain.identity.render(trajectory.user_id)}"


def _instruction(domain: Domain, t: Trajectory, persona: str, request: str, note: str = "") -> str:
    """What the user wants, addressed to whoever plays the user (an LLM simulator reads this)."""
    said = f"{domain.identity.render(t.user_id)} {request}"
    return f"You are {t.user_name}, {persona}. In your own words you want to say: \"{said}\"" + (f" {note}" if note else "")


def _script(opening: str, restatement: str, **extra: Any) -> dict[str, Any]:
    return {"opening": opening, "restatement": restatement, "confirm": "Yes, please go ahead.",
            "done": f"Thank you, that's all I needed. {STOP}", "reveal": [], "switch": "", "insist": "", "accept": "", **extra}


def make_standard(domain: Domain, seed: int, start_hash: str, t: Trajectory, rng: random.Random) -> Task:
    request = request_text(domain, t.action)
    persona = rng.choice(domain.personas)
    instruction = _instruction(domain, t, persona, request)
    outputs = domain.tool(t.action.name).outputs(t.result)
    return _base_task(domain, "standard", seed, start_hash, t, persona, [t.action], outputs,
                      _script(f"{_greeting(domain, t)} {request}", request), instruction)


def make_ambiguous(domain: Domain, seed: int, start_hash: str, t: Trajectory, param: str, rng: random.Random) -> Task:
    slot = domain.tool(t.action.name).intent.slots[param]  # type: ignore[union-attr]
    request = request_text(domain, t.action, withheld=(param,))
    reveal = slot.render(t.action.arguments[param])
    persona = rng.choice(domain.personas)
    instruction = _instruction(domain, t, persona, request_text(domain, t.action),
                               f"Leave out \"{reveal}\" at first; say it only when the agent asks for it.")
    outputs = domain.tool(t.action.name).outputs(t.result)
    script = _script(f"{_greeting(domain, t)} {request}", request,
                     reveal=[{"slot": param, "keywords": list(slot.keywords), "reply": reveal}])
    return _base_task(domain, "ambiguous", seed, start_hash, t, persona, [t.action], outputs, script, instruction)


def make_changing(domain: Domain, seed: int, start_hash: str, first: Trajectory, final: Trajectory, rng: random.Random) -> Task:
    request = request_text(domain, first.action)
    switch = f"Actually, instead I'd like something else. {request_text(domain, final.action)}"
    persona = rng.choice(domain.personas)
    instruction = _instruction(domain, first, persona, request,
                               f"When the agent first asks you to confirm, change your mind and say: \"{switch}\"")
    outputs = domain.tool(final.action.name).outputs(final.result)
    script = _script(f"{_greeting(domain, first)} {request}", request, switch=switch, first_goal=first.action.as_dict())
    task = _base_task(domain, "changing", seed, start_hash, final, persona, [final.action], outputs, script, instruction)
    task.walk = [{"name": s.name, "arguments": s.arguments} for s in (*first.steps, *final.steps)]
    return task


def make_infeasible(domain: Domain, seed: int, start_hash: str, t: Trajectory, rng: random.Random) -> Task:
    rule = next(r for r in domain.policy.rules if r.tool == t.action.name and r.keyword == t.violations[0])
    request = request_text(domain, t.action)
    persona = rng.choice(domain.personas)
    insist = "I really need this done. Can't you make an exception just this once?"
    instruction = _instruction(domain, t, persona, request, "If the agent refuses, insist once; if it refuses again, accept it.")
    script = _script(f"{_greeting(domain, t)} {request}", request, insist=insist,
                     accept=f"I understand, thank you for explaining. {STOP}")
    return _base_task(domain, "infeasible", seed, start_hash, t, persona, [], [rule.keyword], script, instruction, (t.action,))


# -- verification -------------------------------------------------------------------------------------


def verify_task(domain: Domain, db: DB, task: Task) -> list[str]:
    """Problems that make ``task`` unverifiable (empty list: keep it). Fills ``expected_db_hash``."""
    problems: list[str] = []
    if db_hash(db) != task.initial_db_hash:
        return ["initial database hash differs from the task's"]
    state = json.loads(canonical_json(db))
    results = []
    for gold in task.gold_actions:
        tried = attempt(domain, state, Action(gold["name"], gold["arguments"]))
        if not tried.feasible:
            return [f"gold action {gold['name']} is not feasible on replay ({tried.violations or tried.result})"]
        state = tried.db  # type: ignore[assignment]
        results.append(tried.result)
    task.expected_db_hash = db_hash(state)
    if task.scenario == "infeasible":
        for forbidden in task.forbidden_actions:
            tried = attempt(domain, db, Action(forbidden["name"], forbidden["arguments"]))
            if not tried.ok:
                problems.append("the forbidden action is not even accepted by its tool")
            if list(tried.violations) != task.expected_outputs:
                problems.append(f"the policy refuses it for {list(tried.violations)}, not exactly {task.expected_outputs}")
    else:
        if task.expected_db_hash == task.initial_db_hash:
            problems.append("the gold actions do not change the database")
        last = task.gold_actions[-1]["name"]
        if domain.tool(last).outputs(results[-1]) != task.expected_outputs:
            problems.append("expected outputs do not come from the replayed result")
    if task.scenario == "ambiguous":
        for reveal in task.script["reveal"]:
            value = task.user["known_facts"][reveal["slot"]]
            shown = value if isinstance(value, list) else [value]
            if any(render_value(v) in task.script["opening"] for v in shown):
                problems.append(f"withheld '{reveal['slot']}' appears in the opening")
    if task.scenario == "changing":
        first = Action(task.script["first_goal"]["name"], task.script["first_goal"]["arguments"])
        tried = attempt(domain, db, first)
        if not tried.feasible:
            problems.append("the first goal is not feasible, so the switch tests nothing")
        elif db_hash(tried.db) == task.expected_db_hash:  # type: ignore[arg-type]
            problems.append("the first goal reaches the same state as the final one")
        else:
            both = attempt(domain, tried.db, Action(task.gold_actions[0]["name"], task.gold_actions[0]["arguments"]))  # type: ignore[arg-type]
            if both.ok and db_hash(both.db) == task.expected_db_hash:  # type: ignore[arg-type]
                problems.append("doing both goals reaches the final state too")
    return problems


# -- optional paraphrase ------------------------------------------------------------------------------


def paraphrase_opening(client: "EndpointClient", task: Task) -> bool:
    """Rewrite the opening line through an LLM endpoint, keeping every stated fact verbatim.

    Returns whether the paraphrase was kept: one that drops a value, or leaks a withheld one, is refused.
    """
    original = task.script["opening"]
    reply = client.chat([
        {"role": "system", "content": "Rewrite the customer's message so it sounds natural. Keep every id, amount and "
                                      "value exactly as written. Do not add facts. Reply with the message only."},
        {"role": "user", "content": original},
    ]).content.strip()
    values = re.findall(r"[#\w.+-]*\d[#\w.+-]*", original)
    withheld = [render_value(task.user["known_facts"][r["slot"]]) for r in task.script["reveal"]]
    if not reply or any(v not in reply for v in values) or any(w in reply for w in withheld):
        return False
    task.script["opening"] = reply
    return True


# -- the pipeline -------------------------------------------------------------------------------------


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
class Manifest:
    benchmark: str
    domain: str
    version: str
    seed: int
    db_seed: int
    initial_db_hash: str
    requested: int
    counts: dict[str, dict[str, int]]  # split -> scenario -> tasks
    files: dict[str, dict[str, Any]]  # split -> {path, rows, sha256}
    report: dict[str, dict[str, Any]]  # scenario -> generated / verified / dropped / drop_reasons
    exploration: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [f"{'scenario':<12}{'generated':>10}{'verified':>10}{'dropped':>9}"]
        for name, r in self.report.items():
            lines.append(f"{name:<12}{r['generated']:>10}{r['verified']:>10}{r['dropped']:>9}")
        return "\n".join(lines)


def _quotas(n: int) -> dict[str, int]:
    return {s: n // len(SCENARIOS) + (1 if i < n % len(SCENARIOS) else 0) for i, s in enumerate(SCENARIOS)}


def _candidates(domain: Domain, db: DB, seed: int, start_hash: str, scenario: str, feasible: list[Trajectory],
                refused: list[Trajectory], rng: random.Random) -> Iterator[Task]:
    order = rng.sample(feasible, k=len(feasible))
    if scenario == "standard":
        for t in order:
            yield make_standard(domain, seed, start_hash, t, rng)
    elif scenario == "ambiguous":
        for t in order:
            options = withholdable(domain, db, t)
            if options:
                param, _ = rng.choice(options)
                yield make_ambiguous(domain, seed, start_hash, t, param, rng)
    elif scenario == "changing":
        by_user: dict[str, list[Trajectory]] = {}
        for t in order:
            by_user.setdefault(t.user_id, []).append(t)
        for first in order:
            finals = [t for t in by_user[first.user_id] if t.action != first.action]
            if finals:
                yield make_changing(domain, seed, start_hash, first, rng.choice(finals), rng)
    else:
        # Refusals met while exploring, then valid requests pushed over a rule by the domain's hook.
        pool = rng.sample(refused, k=len(refused))
        for t in order:
            broken = domain.tool(t.action.name).break_args(db, t.action.arguments, rng)
            if broken is not None:
                tried = attempt(domain, db, Action(t.action.name, broken))
                pool.append(Trajectory(t.user_id, t.user_name, t.steps, Action(t.action.name, broken), None, tried.violations))
        for t in pool:
            if len(t.violations) == 1:
                yield make_infeasible(domain, seed, start_hash, t, rng)


@dataclass
class Generation:
    domain: str
    seed: int
    initial_db_hash: str
    requested: int
    splits: dict[str, list[Task]]
    report: dict[str, ScenarioReport]
    exploration: dict[str, int]


def generate_tasks(domain_name: str, n: int, seed: int, *, progress: Callable[[int, int], None] | None = None,
                   paraphraser: "EndpointClient | None" = None, walks: int | None = None) -> Generation:
    """Generate about ``n`` verified tasks, split evenly over the scenarios, then into train/dev/test.

    ``progress(done, total)`` is called as tasks are verified; ``paraphraser`` is an optional
    ``EndpointClient`` that rewrites opening lines (off by default, so generation is deterministic).
    """
    domain = get_domain(domain_name)
    db = initial_db(domain_name, seed)
    start_hash = db_hash(db)
    rng = random.Random(seed)
    feasible: list[Trajectory] = []
    refused: list[Trajectory] = []
    explored = Counter[str]()
    for _ in range(walks or max(300, 12 * n)):
        t = explore(domain, db, rng)
        explored["walks"] += 1
        if t is None:
            explored["dead_ends"] += 1
        elif t.violations:
            refused.append(t)
            explored["refused_by_policy"] += 1
        else:
            feasible.append(t)
            explored["feasible"] += 1

    quotas = _quotas(n)
    reports = {s: ScenarioReport() for s in SCENARIOS}
    accepted: dict[str, list[Task]] = {s: [] for s in SCENARIOS}
    seen: set[str] = set()
    done = 0
    for scenario in SCENARIOS:
        report = reports[scenario]
        for task in _candidates(domain, db, seed, start_hash, scenario, feasible, refused, rng):
            if len(accepted[scenario]) >= quotas[scenario]:
                break
            report.generated += 1
            problems = verify_task(domain, db, task)
            # One task per goal across all scenarios, so no goal shows up in two splits.
            key = canonical_json([task.gold_actions, task.forbidden_actions, task.script.get("first_goal")])
            if problems:
                report.drop(problems[0].split(" (")[0])
                continue
            if key in seen:
                report.drop("duplicate goal")
                continue
            if paraphraser is not None and not paraphrase_opening(paraphraser, task):
                report.drop("paraphrase changed the facts")
                continue
            seen.add(key)
            accepted[scenario].append(task)
            report.verified += 1
            done += 1
            if progress:
                progress(done, n)

    splits: dict[str, list[Task]] = {name: [] for name, _ in SPLIT_FRACTIONS}
    for scenario in SCENARIOS:
        tasks = sorted(accepted[scenario], key=lambda t: t.id)
        rng.shuffle(tasks)
        cut_train = round(len(tasks) * SPLIT_FRACTIONS[0][1])
        cut_dev = cut_train + round(len(tasks) * SPLIT_FRACTIONS[1][1])
        splits["train"] += tasks[:cut_train]
        splits["dev"] += tasks[cut_train:cut_dev]
        splits["test"] += tasks[cut_dev:]
    for tasks in splits.values():
        tasks.sort(key=lambda t: (SCENARIOS.index(t.scenario), t.id))
    return Generation(domain.name, seed, start_hash, n, splits, reports, dict(explored))


def write_splits(generation: Generation, out_dir: str | Path) -> Manifest:
    """Write ``<out_dir>/<domain>/{train,dev,test}.jsonl`` and ``manifest.json``."""
    folder = Path(out_dir) / generation.domain
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}
    for split, tasks in generation.splits.items():
        text = "".join(json.dumps(t.to_row(), sort_keys=True, ensure_ascii=False) + "\n" for t in tasks)
        (folder / f"{split}.jsonl").write_text(text, encoding="utf-8")
        files[split] = {"path": f"{split}.jsonl", "rows": len(tasks), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    manifest = Manifest(
        benchmark="trajectory2task", domain=generation.domain, version=GENERATOR_VERSION, seed=generation.seed,
        db_seed=generation.seed, initial_db_hash=generation.initial_db_hash, requested=generation.requested,
        counts={split: {s: sum(t.scenario == s for t in tasks) for s in SCENARIOS} for split, tasks in generation.splits.items()},
        files=files, report={s: asdict(r) for s, r in generation.report.items()}, exploration=generation.exploration,
    )
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def generate(domain_name: str, n: int, seed: int, out_dir: str | Path, *, progress: Callable[[int, int], None] | None = None,
             paraphraser: "EndpointClient | None" = None) -> Manifest:
    """Generate, verify and write one domain's splits; the manifest carries the per-scenario report."""
    return write_splits(generate_tasks(domain_name, n, seed, progress=progress, paraphraser=paraphraser), out_dir)
