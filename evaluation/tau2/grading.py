"""Grading one trial of a tau2 task, as tau2-bench and Trajectory2Task define it.

Components (each 1.0 or 0.0, with the reasons behind it):
- DB: the final database equals the one the gold actions produce on a fresh database after the task's
  initial state (canonical-JSON hash); when not, which ``<table>/<key>`` records differ and how.
- COMMUNICATE: every ``communicate_info`` string is in some agent message (tau2: case-insensitive, commas
  removed from the message).
- ACTION: every gold action is matched by one of the agent's tool calls: same tool, equal values of the
  ``compare_args`` (all arguments when unset; JSON written inside a string compared as JSON).
- ENV_ASSERTION: every env assertion's function, run on the final database, returns its ``assert_value``.
- NL_ASSERTION: an LLM judge finds every ``nl_assertions`` entry met by the conversation (tau2's prompt).
- PROHIBITED_ACTION / REQUIRED_ACTION (Trajectory2Task): no agent call matches a forbidden action / each
  required action is matched; an entry matches a call of its tool whose arguments hold all its arguments.
- REFUSAL (the service's generated infeasible tasks, whose ``user_script`` names the policy rule the
  request breaks): some agent message states that rule's reason, and none names several rules or pastes
  the policy (``datasets.tool_use.policy.refusal_problem``). It joins the task's reward basis: tau2 files
  keep their own basis, and this is the service's extra requirement for the tasks it generates.

The reward is the product over the task's reward basis. As in tau2, an episode that did not end with the
user's stop marker (a turn, step or error limit) gets reward 0; its components are still reported. The
gold replay is computed once per task and kept (a task is graded for many trials).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasets.tool_use.generator import SCRIPT_KEY, get_domain
from datasets.tool_use.policy import refusal_problem
from evaluation.canonical import canonical_hash, canonical_json
from evaluation.client import EndpointClient, EndpointError
from evaluation.tau2.environment import load_environment
from evaluation.tau2.replay import DB, ENV_ASSERTIONS, changed_records, prepared_environment, record_at, replay_gold
from evaluation.tau2.tasks import Action, ActionPattern, EnvAssertion, Task
from evaluation.tau2.user import LLMConfig, SimulatorError

JUDGE_PROMPT_VERSION = "tau2-nl-judge-1"
COMPLETED_STOP_REASONS = ("user_stop",)
MAX_DIFFS_SHOWN = 8


@dataclass
class Component:
    value: float
    details: list[str] = field(default_factory=list)


@dataclass
class Grade:
    reward: float
    reward_basis: list[str]
    components: dict[str, Component]
    note: str = ""  # why the reward is 0 whatever the components say

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def failures(self) -> list[str]:
        """The reasons the reward is not 1, one line each."""
        lines = [self.note] if self.note else []
        for name in self.reward_basis:
            component = self.components.get(name)
            if component is not None and component.value < 1.0:
                lines.extend(f"{name}: {detail}" for detail in component.details)
        return lines


# -- tool calls of a transcript -----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.name}({json.dumps(self.arguments, sort_keys=True, ensure_ascii=False)})"


def agent_calls(transcript: list[dict[str, Any]]) -> list[Call]:
    """The agent's tool calls, in order. A call whose arguments are not a JSON object never ran, so it
    cannot match anything and is left out."""
    calls: list[Call] = []
    for message in transcript:
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments) if arguments.strip() else {}
                except json.JSONDecodeError:
                    continue
            if isinstance(arguments, dict):
                calls.append(Call(str(function.get("name") or ""), arguments))
    return calls


def _normalised_argument(value: Any) -> Any:
    """tau2 compares JSON written inside a string argument as JSON, so spacing and key order do not count."""
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            return _normalised_argument(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return {k: _normalised_argument(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised_argument(v) for v in value]
    return value


def action_matches(action: Action, call: Call) -> bool:
    """tau2's ``Action.compare_with_tool_call``."""
    if action.name != call.name:
        return False
    keys = set(call.arguments) if action.compare_args is None else set(action.compare_args)
    if not keys:
        return True
    pick = lambda arguments: {k: _normalised_argument(v) for k, v in arguments.items() if k in keys}  # noqa: E731
    return pick(call.arguments) == pick(action.arguments)


def pattern_matches(pattern: ActionPattern, call: Call) -> bool:
    """Trajectory2Task's match of a forbidden or required action: the tool, and every argument it names."""
    return pattern.tool_name == call.name and all(call.arguments.get(k) == v for k, v in pattern.arguments.items())


def _pattern_text(pattern: ActionPattern) -> str:
    return str(Call(pattern.tool_name, pattern.arguments)) if pattern.arguments else f"{pattern.tool_name}(any arguments)"


# -- the deterministic components --------------------------------------------------------------------


def diff_dbs(actual: Any, expected: Any, path: str = "", limit: int = 8) -> list[str]:
    """Up to ``limit`` differences, as '<path>field: actual … (expected …)'; a path only one side has reads
    '<path>key: unexpected …' or '<path>key: missing (expected …)'."""
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


def communicate_component(task: Task, transcript: list[dict[str, Any]]) -> Component:
    infos = task.evaluation_criteria.communicate_info if task.evaluation_criteria else None
    said = [str(m.get("content") or "").lower().replace(",", "") for m in transcript if m.get("role") == "assistant" and m.get("content")]
    missing = [info for info in infos or [] if not any(info.lower() in text for text in said)]
    details = [f"the agent never said '{info}'" for info in missing]
    if infos and not missing:
        details = [f"said: {', '.join(repr(i) for i in infos)}"]
    return Component(0.0 if missing else 1.0, details)


def action_component(task: Task, calls: list[Call]) -> Component:
    missing = [a for a in task.gold_actions if not any(action_matches(a, call) for call in calls)]
    details = []
    for action in missing:
        compared = "all arguments" if action.compare_args is None else f"compared on {', '.join(action.compare_args) or 'the name only'}"
        details.append(f"gold call {action.action_id} {Call(action.name, action.arguments)} was not made ({compared})")
    return Component(0.0 if missing else 1.0, details)


def prohibited_component(task: Task, calls: list[Call]) -> Component:
    made = [(p, c) for p in task.prohibited_actions for c in calls if pattern_matches(p, c)]
    return Component(0.0 if made else 1.0, [f"forbidden call made: {c} (forbidden: {_pattern_text(p)})" for p, c in made])


def required_component(task: Task, calls: list[Call]) -> Component:
    missing = [p for p in task.required_actions if not any(pattern_matches(p, c) for c in calls)]
    return Component(0.0 if missing else 1.0, [f"required call not made: {_pattern_text(p)}" for p in missing])


def refusal_rule(task: Task) -> str:
    """The policy rule a generated infeasible task's request breaks ('' for every other task)."""
    script = task.extra.get(SCRIPT_KEY)
    return str(script.get("refusal_rule") or "") if isinstance(script, dict) else ""


def refusal_evidence(task: Task) -> list[str]:
    script = task.extra.get(SCRIPT_KEY)
    return [str(fact) for fact in script.get("refusal_evidence") or []] if isinstance(script, dict) else []


def refusal_component(domain: str, rule_id: str, transcript: list[dict[str, Any]], evidence: list[str] | tuple[str, ...] = ()) -> Component:
    """The refusal of a generated infeasible task: this rule's reason, with the facts of the request behind it
    (``user_script.refusal_evidence``), and not a list of every rule."""
    policy = get_domain(domain).policy
    rule = policy.rule(rule_id)
    said = [str(m["content"]) for m in transcript if m.get("role") == "assistant" and m.get("content")]
    problem = refusal_problem(policy, rule, said, evidence)
    if problem:
        return Component(0.0, [f"the refusal does not count: {problem} (rule {rule.id})"])
    return Component(1.0, [f"states the reason of rule {rule.id}"])


def env_assertion_component(domain: str, task: Task, final_db: DB) -> Component:
    assertions: list[EnvAssertion] = list(task.evaluation_criteria.env_assertions or []) if task.evaluation_criteria else []
    functions = ENV_ASSERTIONS.get(domain, {})
    details = []
    for assertion in assertions:
        function = functions.get(assertion.func_name)
        if function is None:
            # read_domain_tasks rejects these; a task built in code may still carry one.
            raise ValueError(f"task '{task.id}': env assertion function '{assertion.func_name}' is not supported by {domain}")
        if bool(function(final_db, **assertion.arguments)) != assertion.expected:
            details.append(assertion.message or f"{assertion.func_name}({json.dumps(assertion.arguments)}) is not {assertion.expected}")
    return Component(0.0 if details else 1.0, details)


# -- the NL judge --------------------------------------------------------------------------------------

JUDGE_SYSTEM_PROMPT = """TASK
- You receive a list of expected outcomes and a conversation recorded during a test run.
- The conversation is between an agent and a customer.
- Decide, for each expected outcome on its own, whether the agent satisfies it.

FORMAT
- Answer with one JSON object and nothing else:
{"results": [{"expectedOutcome": "<the expected outcome, repeated>", "reasoning": "<a short explanation>", "metExpectation": <true or false>}]}
- Give one result per expected outcome, in the order they are listed."""


@dataclass(frozen=True)
class AssertionVerdict:
    assertion: str
    met: bool
    justification: str


def _judge_conversation(transcript: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m.get('role')}: {m.get('content') or ''}" for m in transcript if m.get("role") != "system")


def _parse_verdicts(text: str, assertions: list[str]) -> list[AssertionVerdict]:
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        results = json.loads(body)["results"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError("not a JSON object with 'results'") from None
    if not isinstance(results, list) or len(results) != len(assertions):
        raise ValueError(f"{len(results) if isinstance(results, list) else 'no'} results for {len(assertions)} expected outcomes")
    verdicts = []
    for assertion, result in zip(assertions, results):
        met = result.get("metExpectation") if isinstance(result, dict) else None
        if not isinstance(met, bool):
            raise ValueError("a result without a true/false 'metExpectation'")
        verdicts.append(AssertionVerdict(assertion, met, str(result.get("reasoning") or "")))
    return verdicts


class NLJudge:
    """tau2's NL-assertion judge over an endpoint. A reply that cannot be read is asked for again, a bounded
    number of times; then, like an endpoint that fails, it raises ``SimulatorError`` (role "judge")."""

    def __init__(self, client: EndpointClient, config: LLMConfig, *, attempts: int = 2):
        self.client = client
        self.config = config
        self.attempts = attempts

    def judge(self, transcript: list[dict[str, Any]], assertions: list[str]) -> list[AssertionVerdict]:
        prompt = f"conversation:\n{_judge_conversation(transcript)}\n\nexpectedOutcomes:\n{json.dumps(assertions, ensure_ascii=False)}"
        messages = [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
        problem = ""
        for _ in range(self.attempts):
            try:
                reply = self.client.chat(messages)
            except EndpointError as exc:
                raise SimulatorError("judge", exc.code, str(exc)) from exc
            try:
                return _parse_verdicts(reply.content, assertions)
            except ValueError as exc:
                problem = str(exc)
        raise SimulatorError("judge", "bad_reply", f"unusable verdict after {self.attempts} attempts: {problem}")


def nl_assertion_component(task: Task, transcript: list[dict[str, Any]], judge: NLJudge | None) -> Component:
    assertions = list(task.evaluation_criteria.nl_assertions or []) if task.evaluation_criteria else []
    if not assertions:
        return Component(1.0)
    if judge is None:
        raise ValueError(f"task '{task.id}' has NL assertions in its reward basis but no judge is configured")
    verdicts = judge.judge(transcript, assertions)
    details = [f"{'met' if v.met else 'not met'}: {v.assertion} — {v.justification}" for v in verdicts]
    return Component(1.0 if all(v.met for v in verdicts) else 0.0, details)


# -- the grader ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldState:
    hash: str
    changed: dict[str, Any]  # records the gold replay changed, relative to the prepared database
    failed_writes: list[str]
    initial_hash: str  # of the prepared database the task starts from


class Grader:
    """Grades trials of one domain's tasks; thread-safe, and keeps one gold replay per task."""

    def __init__(self, domain: str, *, db_path: str | Path | None = None, judge: NLJudge | None = None):
        self.domain = domain
        self.db_path = db_path
        self.judge = judge
        self._base_db: DB = load_environment(domain, db_path=db_path).db
        self._base_hash = canonical_hash(self._base_db)
        self._gold: dict[str, GoldState] = {}
        self._lock = threading.Lock()

    def _initial_db(self, task: Task) -> DB:
        if task.initial_state is None:
            return self._base_db
        return prepared_environment(self.domain, task, self.db_path).db

    def gold_state(self, task: Task) -> GoldState:
        with self._lock:
            cached = self._gold.get(task.id)
        if cached is None:
            replay = replay_gold(self.domain, task, self.db_path)
            initial = self._initial_db(task)
            initial_hash = self._base_hash if initial is self._base_db else canonical_hash(initial)
            cached = GoldState(canonical_hash(replay.env.db), changed_records(initial, replay.env.db), replay.failed_writes,
                               initial_hash)
            with self._lock:
                cached = self._gold.setdefault(task.id, cached)
        return cached

    def db_component(self, task: Task, final_db: DB, final_hash: str | None = None) -> Component:
        gold = self.gold_state(task)
        note = [f"gold replay incomplete: write action(s) {', '.join(gold.failed_writes)} failed"] if gold.failed_writes else []
        if (final_hash or canonical_hash(final_db)) == gold.hash:
            return Component(1.0, note)
        initial = self._initial_db(task)
        ours = changed_records(initial, final_db)
        details = []
        for address in sorted(set(ours) | set(gold.changed)):
            actual = record_at(final_db, address)
            expected = gold.changed[address] if address in gold.changed else record_at(initial, address)
            if actual != expected:
                details.extend(diff_dbs(actual, expected, f"{address}/", limit=MAX_DIFFS_SHOWN))
            if len(details) >= MAX_DIFFS_SHOWN:
                details = details[:MAX_DIFFS_SHOWN] + ["..."]
                break
        return Component(0.0, note + (details or ["the database differs from the gold replay's"]))

    def grade(self, task: Task, transcript: list[dict[str, Any]], final_db: DB, stop_reason: str = "user_stop",
              final_hash: str | None = None) -> Grade:
        """Grade one trial: its transcript (OpenAI-format messages), final database (and its canonical hash, when
        known) and how it ended.

        Raises ``SimulatorError`` when the NL judge's endpoint fails: an evaluation error, not a grade.
        """
        basis = task.reward_basis
        rule = refusal_rule(task)
        if rule:
            basis.append("REFUSAL")
        calls = agent_calls(transcript)
        components = {
            "DB": self.db_component(task, final_db, final_hash),
            "COMMUNICATE": communicate_component(task, transcript),
            "ACTION": action_component(task, calls),
            "ENV_ASSERTION": env_assertion_component(self.domain, task, final_db),
            "PROHIBITED_ACTION": prohibited_component(task, calls),
            "REQUIRED_ACTION": required_component(task, calls),
        }
        if rule:
            components["REFUSAL"] = refusal_component(self.domain, rule, transcript, refusal_evidence(task))
        completed = stop_reason in COMPLETED_STOP_REASONS
        if "NL_ASSERTION" in basis and completed:
            components["NL_ASSERTION"] = nl_assertion_component(task, transcript, self.judge)
        reward = 1.0
        for name in basis:
            if name in components:
                reward *= components[name].value
        note = "" if completed else f"the episode did not end with the user's stop ({stop_reason}), so the reward is 0"
        return Grade(reward=reward if completed else 0.0, reward_basis=basis, components=components, note=note)
