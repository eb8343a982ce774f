"""Trajectory2Task's three LLM stages on tau2's environments, over any OpenAI-compatible endpoint.

1. ``explore``: an LLM acts as the service agent for a sampled real user of the domain's database, with a
   seeded sample of the domain's tools and a step budget, on a fresh copy of the database. Each trajectory
   is recorded as the paper's ``1_trajectories.json`` records it (``user_info``, ``steps[]`` with
   ``tool_call``, ``tool_response``, ``llm_reasoning``, ``execution_status``); it is kept if at least one
   write succeeded.
2. ``summarise``: the LLM turns one trajectory into one tau2 task of an intent type (general, ambiguous,
   changing, infeasible). It writes the ``user_scenario`` only: the gold actions are the trajectory's
   successful writes, as recorded, never the LLM's text. A task is kept only if it reads back as a tau2
   task of the domain and its gold replay on a fresh database is clean.
3. ``judge``: the LLM scores each task 1-10 per criterion (as ``3_validity_report_general.json``); the
   tasks whose mean score reaches the threshold are the filtered task file (a tau2 task file).

Every stage appends one JSON line per record to its files in the output folder as it goes, flushed to
disk, and skips records already there when run again, so an interrupted run loses at most the record in
flight. An unusable reply (not the JSON asked for) is asked for again a bounded number of times, then
recorded as a dropped record with the reason; an endpoint fault that survives the client's retries stops
the stage, with nothing written for the record in flight.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

from datasets.base import DatasetError
from evaluation.client import EndpointClient
from evaluation.tau2.environment import ToolType, get_domain, load_environment
from evaluation.tau2.replay import read_domain_tasks, verify_tasks
from evaluation.tau2.tasks import write_tasks

JsonDict = dict[str, Any]
Progress = Callable[[int, int], None]  # (records done, records in all)

INTENTS = ("general", "ambiguous", "changing", "infeasible")
# tau2 and the leaderboard call the general intent "standard".
INTENT_ALIASES = {"standard": "general"}
# Tools the explorer always gets, so that it can find its user whatever else the sample holds.
LOOKUP_TOOLS = {
    "retail": ("find_user_id_by_email", "find_user_id_by_name_zip", "get_user_details"),
    "airline": ("get_user_details",),
}
BASE_CRITERIA = ("realism", "necessity", "correctness")
EXTRA_CRITERIA = {"changing": ("changing_scenario_relevance",), "infeasible": ("infeasibility_reasonability",)}
DEFAULT_THRESHOLD = 7.0
DEFAULT_ATTEMPTS = 3
# Characters of one tool response shown to the summariser and the judge.
RESPONSE_CHARS = 1500

TRAJECTORIES = "1_trajectories.jsonl"


def tasks_log(intent: str) -> str:
    return f"2_tasks_{intent}.jsonl"


def tasks_file(intent: str) -> str:
    return f"2_tasks_{intent}.json"


def reports_log(intent: str) -> str:
    return f"3_validity_report_{intent}.jsonl"


def filtered_file(intent: str) -> str:
    return f"4_tasks_{intent}_filtered.json"


def dropped_log(name: str) -> str:
    return name.removesuffix(".jsonl") + "_dropped.jsonl"


def intent_of(value: str) -> str:
    intent = INTENT_ALIASES.get(value, value)
    if intent not in INTENTS:
        raise ValueError(f"unknown intent '{value}' (known: {', '.join(INTENTS)}, or 'standard')")
    return intent


def criteria_for(intent: str) -> tuple[str, ...]:
    return BASE_CRITERIA + EXTRA_CRITERIA.get(intent, ())


# -- the record files ----------------------------------------------------------------------------------


class JsonlLog:
    """An append-only JSON Lines file of records keyed by ``id``, each line flushed and synced as written.

    A crash can tear only the last line; opening the file drops a torn last line (one without its newline)
    so that record is made again. Any other line that is not a JSON record raises ``DatasetError``.
    """

    def __init__(self, path: Path):
        self.path = path
        self.records: list[JsonDict] = []
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        kept = 0
        for number, line in enumerate(data.splitlines(keepends=True), start=1):
            if not line.endswith(b"\n"):
                break
            kept += len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(str(self.path), f"not valid JSON: {exc.msg}", row=number) from None
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise DatasetError(str(self.path), "not a record with a string 'id'", row=number)
            self.records.append(record)
        if kept < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(kept)

    def ids(self) -> set[str]:
        return {record["id"] for record in self.records}

    def append(self, record: JsonDict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)


def _input_log(path: Path, stage: str) -> JsonlLog:
    if not path.is_file():
        raise DatasetError(str(path), f"not found: run the {stage} stage first")
    return JsonlLog(path)


# -- stage reports -------------------------------------------------------------------------------------


@dataclass
class StageReport:
    stage: str
    domain: str
    output: Path  # the file of kept records
    total: int = 0  # records the stage has covered, this run and earlier ones
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> records
    resumed: int = 0  # of ``total``, those an earlier run wrote

    def lines(self) -> list[str]:
        resumed = f" ({self.resumed} from an earlier run)" if self.resumed else ""
        lines = [f"{self.stage} {self.domain}: {self.total} generated{resumed}, {self.kept} kept, "
                 f"{sum(self.dropped.values())} dropped -> {self.output}"]
        lines += [f"  dropped, {reason}: {count}" for reason, count in sorted(self.dropped.items())]
        return lines

    def to_json(self) -> JsonDict:
        return {"stage": self.stage, "domain": self.domain, "output": str(self.output), "generated": self.total,
                "kept": self.kept, "dropped": dict(sorted(self.dropped.items())), "resumed": self.resumed}

    def write(self, out_dir: Path, name: str) -> None:
        (out_dir / f"report_{name}.json").write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


def _report(stage: str, domain: str, output: Path, kept: JsonlLog, dropped: JsonlLog, resumed: int) -> StageReport:
    return StageReport(stage, domain, output, total=len(kept.records) + len(dropped.records), kept=len(kept.records),
                       dropped=Counter(record["reason"] for record in dropped.records), resumed=resumed)


# -- talking to the LLM --------------------------------------------------------------------------------


class ReplyError(ValueError):
    """An LLM reply that is not the JSON asked for; the message says what is wrong with it."""


class BadReply(Exception):
    def __init__(self, problem: str, attempts: int, reply: str):
        super().__init__(problem)
        self.problem, self.attempts, self.reply = problem, attempts, reply


def json_object(text: str) -> JsonDict:
    """The JSON object of a reply, which may be fenced as a code block or have words around it."""
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise ReplyError("the reply holds no JSON object")
    try:
        value = json.loads(body[start:end + 1])
    except json.JSONDecodeError as exc:
        raise ReplyError(f"the reply's JSON does not parse ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ReplyError("the reply's JSON is not an object")
    return value


def _ask_json(client: EndpointClient, system: str, prompt: str, parse: Callable[[JsonDict], Any], attempts: int) -> Any:
    """``parse`` of the reply's JSON object. An unusable reply is answered with what is wrong and asked for
    again, ``attempts`` times in all; then ``BadReply``. ``EndpointError`` passes through."""
    messages: list[JsonDict] = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    problem, content = "", ""
    for _ in range(attempts):
        reply = client.chat(messages)
        content = reply.content
        try:
            return parse(json_object(content))
        except ReplyError as exc:
            problem = str(exc)
        messages += [{"role": "assistant", "content": content},
                     {"role": "user", "content": f"That reply cannot be used: {problem}. Answer again with only the JSON object."}]
    raise BadReply(problem, attempts, content)


def _text(value: Any, name: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ReplyError(f"'{name}' must be a non-empty string")
    return value.strip()


# -- stage 1: explore ----------------------------------------------------------------------------------

EXPLORER_PROMPT = """You explore a customer-service environment to record realistic tool-call trajectories.
Act as the service agent for the customer below, on your own initiative: think of one request this customer
could plausibly have, look up what you need with the tools, and carry the request out with a tool that
changes the database, following the policy. Make one tool call at a time and say in a sentence why before
each call. When the request is done, answer without a tool call. You have at most {steps} tool calls.

<policy>
{policy}
</policy>

<user_info>
{user_info}
</user_info>"""


def tool_types(domain: str) -> dict[str, ToolType]:
    return get_domain(domain).toolkit.tool_types()


def sample_tools(domain: str, k: int, rng: random.Random) -> list[str]:
    """``k`` of the domain's tools: its user lookups, at least one write tool, the rest at random."""
    types = tool_types(domain)
    lookups = list(LOOKUP_TOOLS[domain])
    rest = sorted(name for name in types if name not in lookups)
    chosen = rng.sample(rest, max(1, min(k - len(lookups), len(rest))))
    if not any(types[name] == ToolType.WRITE for name in chosen):
        chosen[rng.randrange(len(chosen))] = rng.choice(sorted(n for n in rest if types[n] == ToolType.WRITE))
    return lookups + chosen


def _now() -> str:
    return datetime.now().isoformat()


def explore_one(client: EndpointClient, domain: str, trajectory_id: str, rng: random.Random, *, tools: int,
                steps: int) -> JsonDict:
    """One exploration on a fresh copy of the database, recorded as the paper's trajectories are."""
    env = load_environment(domain)
    user = copy.deepcopy(env.db["users"][rng.choice(sorted(env.db["users"]))])  # as it was before any write
    available = sample_tools(domain, tools, rng)
    schemas = [s for s in env.tool_schemas() if s["function"]["name"] in available]
    system = EXPLORER_PROMPT.format(steps=steps, policy=env.policy, user_info=json.dumps(user, indent=1))
    messages: list[JsonDict] = [{"role": "system", "content": system}, {"role": "user", "content": "Begin."}]
    record: JsonDict = {"id": trajectory_id, "trajectory_id": trajectory_id, "domain_name": domain,
                        "exploration_strategy": "llm", "max_steps": steps, "start_time": _now(),
                        "user_info": user, "available_tools": available, "steps": []}
    usage = Counter[str]()
    termination = "max_steps_reached"
    while len(record["steps"]) < steps:
        reply = client.chat(messages, tools=schemas)
        usage.update(prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
        messages.append(reply.message)
        if not reply.tool_calls:
            termination = "agent_stopped"
            break
        for call in reply.tool_calls[: steps - len(record["steps"])]:
            record["steps"].append(_step(env, call, available, reply.content or None, len(record["steps"]) + 1))
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": record["steps"][-1]["tool_response"]["content"]})
    done = record["steps"]
    record.update(
        end_time=_now(), termination_reason=termination, usage=dict(usage),
        statistics={"total_steps": len(done),
                    "success_rate": sum(s["execution_status"] == "success" for s in done) / len(done) if done else 0.0,
                    "tool_usage": dict(Counter(s["tool_call"]["name"] for s in done))},
    )
    return record


def _step(env: Any, call: JsonDict, available: list[str], reasoning: str | None, number: int) -> JsonDict:
    name, raw = call["function"]["name"], call["function"]["arguments"]
    if name in available:
        result = env.call(name, raw)
        output, ok = result.output, result.ok
    else:  # the environment has the tool, but this exploration was not given it
        output, ok = f"Error: Tool '{name}' not found.", False
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        arguments = raw  # recorded as sent; the call failed on it
    return {
        "step_number": number, "timestamp": _now(),
        "tool_call": {"id": call["id"], "name": name, "arguments": arguments, "requestor": "assistant"},
        "tool_response": {"role": "tool", "content": output, "id": call["id"], "requestor": "assistant", "error": not ok},
        "llm_reasoning": reasoning, "available_tools": available,
        "execution_status": "success" if ok else "error", "error_message": None if ok else output,
    }


def successful_writes(domain: str, trajectory: JsonDict) -> list[tuple[str, JsonDict]]:
    """The trajectory's write calls that succeeded, in order: what a task made from it must achieve."""
    types = tool_types(domain)
    return [(s["tool_call"]["name"], s["tool_call"]["arguments"]) for s in trajectory["steps"]
            if s["execution_status"] == "success" and types.get(s["tool_call"]["name"]) == ToolType.WRITE]


def explore(client: EndpointClient, domain: str, out_dir: str | Path, *, n: int, seed: int = 0, tools: int = 10,
            steps: int = 12, progress: Progress | None = None) -> StageReport:
    """Explorations ``traj_0000`` .. ``traj_<n-1>``; attempt ``i`` draws its user and tools from ``(seed, i)``,
    so a resumed run makes the same ones it would have made."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept, dropped = JsonlLog(out / TRAJECTORIES), JsonlLog(out / dropped_log(TRAJECTORIES))
    done = kept.ids() | dropped.ids()
    ids = [f"traj_{i:04d}" for i in range(n)]
    resumed = sum(trajectory_id in done for trajectory_id in ids)
    for index, trajectory_id in enumerate(ids):
        if trajectory_id not in done:
            record = explore_one(client, domain, trajectory_id, random.Random(f"{seed}:{index}"), tools=tools, steps=steps)
            if successful_writes(domain, record):
                kept.append(record)
            else:
                dropped.append({"id": trajectory_id, "reason": "no_successful_write",
                                "detail": f"{len(record['steps'])} steps, {record['termination_reason']}", "trajectory": record})
        if progress:
            progress(index + 1, n)
    report = _report("explore", domain, kept.path, kept, dropped, resumed)
    report.write(out, "explore")
    return report


# -- stage 2: summarise --------------------------------------------------------------------------------

INTENT_GUIDES = {
    "general": "The customer has one clear request, and carrying it out is exactly the write actions below.",
    "ambiguous": (
        "The customer's request leaves out one deciding fact (for example which order, item or payment "
        "method), without which the agent cannot tell which write to make. Put that fact in known_info and say "
        "in task_instructions that the customer gives it only when the agent asks for it."),
    "changing": (
        "The customer first asks for something else and, once the agent has proposed it, changes their mind to "
        "the goal the write actions below achieve; only those writes may happen. Describe the first goal, the "
        "change and its reason in task_instructions."),
    "infeasible": (
        "Besides the goal the write actions below achieve (the allowed part, which the agent should still "
        "carry out), the customer asks for something the policy forbids. Name the specific rule in "
        "infeasible_reason, and give the forbidden request as actions_should_not_taken: the write tool calls, "
        "with arguments on this customer's records, that the agent must not make."),
}

SUMMARISER_PROMPT = """You turn an exploration trajectory of a customer-service agent into a task for
evaluating agents: the scenario a simulated customer plays. Write it from the customer's side (second
person: "You want to ..."), using only facts the trajectory shows.

Intent type: {intent}. {guide}

Answer with one JSON object and nothing else:
{{"persona": "<one sentence about the customer's manner>",
  "reason_for_call": "<why the customer calls>",
  "known_info": "<what the customer knows: name, e-mail or zip, order or reservation ids, ...>",
  "unknown_info": "<what the customer does not know, or null>",
  "task_instructions": "<how the customer behaves in the conversation>",
  "communicate_info": ["<a value the agent must tell the customer, copied from a tool response>", ...]{extra}}}
communicate_info may be empty; each value must appear in one of the trajectory's tool responses."""

INFEASIBLE_FIELDS = """,
  "infeasible_reason": "<the policy rule that forbids part of the request>",
  "actions_should_not_taken": [{"tool_name": "<a write tool>", "arguments": {...}}, ...]"""


def _trajectory_text(trajectory: JsonDict) -> str:
    lines = []
    for step in trajectory["steps"]:
        call = step["tool_call"]
        lines.append(f"Step {step['step_number']}: {call['name']}({json.dumps(call['arguments'], ensure_ascii=False)}) "
                     f"-> {step['execution_status']}")
        if step.get("llm_reasoning"):
            lines.append(f"  reasoning: {step['llm_reasoning']}")
        lines.append(f"  response: {step['tool_response']['content'][:RESPONSE_CHARS]}")
    return "\n".join(lines)


def _writes_text(writes: list[tuple[str, JsonDict]]) -> str:
    return "\n".join(f"- {name}({json.dumps(arguments, ensure_ascii=False)})" for name, arguments in writes)


def _summary_prompt(domain: str, trajectory: JsonDict, writes: list[tuple[str, JsonDict]], intent: str, policy: str) -> str:
    parts = [f"Domain: {domain}",
             f"Customer record:\n{json.dumps(trajectory['user_info'], ensure_ascii=False)}",
             f"Trajectory:\n{_trajectory_text(trajectory)}",
             f"Write actions the task's agent must make (its gold actions):\n{_writes_text(writes)}"]
    if intent == "infeasible":
        parts.insert(1, f"Policy:\n{policy}")
    return "\n\n".join(parts)


def _scenario_parser(domain: str, intent: str, trajectory: JsonDict, writes: list[tuple[str, JsonDict]]) -> Callable[[JsonDict], JsonDict]:
    """Checks a summariser reply and returns the fields of the task it gives."""
    responses = [s["tool_response"]["content"] for s in trajectory["steps"] if s["execution_status"] == "success"]
    types = tool_types(domain)

    def parse(reply: JsonDict) -> JsonDict:
        fields: JsonDict = {
            "persona": _text(reply.get("persona"), "persona", required=False),
            "reason_for_call": _text(reply.get("reason_for_call"), "reason_for_call"),
            "known_info": _text(reply.get("known_info"), "known_info"),
            "unknown_info": _text(reply.get("unknown_info"), "unknown_info", required=False),
            "task_instructions": _text(reply.get("task_instructions"), "task_instructions"),
        }
        communicate = reply.get("communicate_info") or []
        if not isinstance(communicate, list) or not all(isinstance(v, str) and v.strip() for v in communicate):
            raise ReplyError("'communicate_info' must be a list of non-empty strings")
        for value in communicate:
            if not any(value in response for response in responses):
                raise ReplyError(f"communicate_info '{value}' appears in no tool response of the trajectory")
        fields["communicate_info"] = communicate
        if intent == "infeasible":
            fields["infeasible_reason"] = _text(reply.get("infeasible_reason"), "infeasible_reason")
            fields["actions_should_not_taken"] = _forbidden_actions(reply.get("actions_should_not_taken"), types, writes)
        return fields

    return parse


def _forbidden_actions(value: Any, types: dict[str, ToolType], writes: list[tuple[str, JsonDict]]) -> list[JsonDict]:
    if not isinstance(value, list) or not value:
        raise ReplyError("'actions_should_not_taken' must be a non-empty list")
    actions = []
    for i, action in enumerate(value):
        where = f"actions_should_not_taken[{i}]"
        if not isinstance(action, dict):
            raise ReplyError(f"{where} must be an object")
        name, arguments = action.get("tool_name"), action.get("arguments", {})
        if name not in types:
            raise ReplyError(f"{where}: unknown tool '{name}' (tools: {', '.join(sorted(types))})")
        if types[name] != ToolType.WRITE:
            raise ReplyError(f"{where}: '{name}' does not change the database, so there is nothing to forbid")
        if not isinstance(arguments, dict):
            raise ReplyError(f"{where}: 'arguments' must be an object")
        if (name, arguments) in writes:
            raise ReplyError(f"{where}: forbids one of the gold write actions")
        actions.append({"tool_name": name, "arguments": arguments})
    return actions


def build_task(domain: str, intent: str, trajectory: JsonDict, writes: list[tuple[str, JsonDict]], fields: JsonDict) -> JsonDict:
    """The tau2 task: the LLM's scenario, the trajectory's successful writes as gold actions."""
    instructions = {"domain": domain, "reason_for_call": fields["reason_for_call"], "known_info": fields["known_info"],
                    "unknown_info": fields["unknown_info"], "task_instructions": fields["task_instructions"]}
    if intent == "infeasible":
        instructions.update(infeasible_reason=fields["infeasible_reason"],
                            actions_should_not_taken=fields["actions_should_not_taken"],
                            actions_should_be_taken=[{"tool_name": name, "arguments": arguments} for name, arguments in writes])
    criteria: JsonDict = {"actions": [{"action_id": f"0_{i}", "name": name, "arguments": arguments}
                                      for i, (name, arguments) in enumerate(writes)]}
    if fields["communicate_info"]:
        criteria["communicate_info"] = fields["communicate_info"]
    scenario = {"instructions": {k: v for k, v in instructions.items() if v is not None}}
    if fields["persona"]:
        scenario["persona"] = fields["persona"]
    return {"id": task_id(trajectory["id"], intent), "trajectory_id": trajectory["id"], "type": intent,
            "description": {"purpose": f"Trajectory2Task {intent} task from exploration {trajectory['id']}"},
            "user_scenario": scenario, "evaluation_criteria": criteria}


def task_id(trajectory_id: str, intent: str) -> str:
    """Unique over intents, so that the task files of several intents make one task set."""
    return f"{trajectory_id}_{intent}"


def check_task(domain: str, task: JsonDict) -> tuple[str, str] | None:
    """Why the task cannot be kept, as (reason, detail): it does not read back as a tau2 task of the domain,
    or its gold replay fails. None if it can."""
    stream = StringIO(json.dumps([task]))
    stream.name = f"task {task['id']}"
    try:
        [parsed] = read_domain_tasks(domain, stream)
    except DatasetError as exc:
        return "unreadable", str(exc)
    errors = verify_tasks(domain, [parsed])[parsed.id]["errors"]
    return ("replay_failed", errors[0]) if errors else None


def summarise(client: EndpointClient, domain: str, out_dir: str | Path, *, intent: str = "general", n: int | None = None,
              attempts: int = DEFAULT_ATTEMPTS, progress: Progress | None = None) -> StageReport:
    """One task of ``intent`` per kept trajectory (the first ``n``), then the tau2 task file of them all."""
    intent = intent_of(intent)
    out = Path(out_dir)
    trajectories = _input_log(out / TRAJECTORIES, "explore").records[:n]
    kept, dropped = JsonlLog(out / tasks_log(intent)), JsonlLog(out / dropped_log(tasks_log(intent)))
    done = kept.ids() | dropped.ids()
    resumed = sum(task_id(t["id"], intent) in done for t in trajectories)
    policy = load_environment(domain).policy
    system = SUMMARISER_PROMPT.format(intent=intent, guide=INTENT_GUIDES[intent],
                                      extra=INFEASIBLE_FIELDS if intent == "infeasible" else "")
    for index, trajectory in enumerate(trajectories):
        record_id = task_id(trajectory["id"], intent)
        if record_id not in done:
            if trajectory.get("domain_name") != domain:
                raise DatasetError(str(out / TRAJECTORIES), f"trajectory '{trajectory['id']}' explored {trajectory.get('domain_name')}, not {domain}")
            writes = successful_writes(domain, trajectory)
            try:
                fields = _ask_json(client, system, _summary_prompt(domain, trajectory, writes, intent, policy),
                                   _scenario_parser(domain, intent, trajectory, writes), attempts)
            except BadReply as exc:
                dropped.append({"id": record_id, "trajectory_id": trajectory["id"], "reason": "bad_reply",
                                "detail": exc.problem, "attempts": exc.attempts, "reply": exc.reply[:RESPONSE_CHARS]})
            else:
                task = build_task(domain, intent, trajectory, writes, fields)
                problem = check_task(domain, task)
                if problem is None:
                    kept.append(task)
                else:
                    dropped.append({"id": record_id, "trajectory_id": trajectory["id"], "reason": problem[0],
                                    "detail": problem[1], "task": task})
        if progress:
            progress(index + 1, len(trajectories))
    write_task_file(domain, kept.records, out / tasks_file(intent))
    report = _report("summarise", domain, out / tasks_file(intent), kept, dropped, resumed)
    report.write(out, f"summarise_{intent}")
    return report


def write_task_file(domain: str, tasks: list[JsonDict], path: Path) -> None:
    """Write the tasks as a tau2 task file and read it back as one, which must give every task."""
    stream = StringIO(json.dumps(tasks))
    stream.name = str(path)
    write_tasks(read_domain_tasks(domain, stream), path)
    read_domain_tasks(domain, path)


# -- stage 3: judge ------------------------------------------------------------------------------------

CRITERIA_GUIDES = {
    "realism": "Would a real customer plausibly make this request, with a clear motive and enough details "
               "(names, ids, products) to tell uniquely what must be done?",
    "necessity": "Do the gold write actions achieve everything the task asks, and nothing it does not allow? "
                 "Is every value to communicate asked for by the customer?",
    "correctness": "Does the scenario match what the gold actions accomplish, with arguments that fit it, and "
                   "are the values to communicate supported by the trajectory?",
    "changing_scenario_relevance": "Does the customer's intent genuinely change during the conversation (a "
                                   "change of mind, or a second request after the first)? 1 for one stable intent.",
    "infeasibility_reasonability": "Does the policy really forbid the forbidden actions, for the stated reason, "
                                   "and are they well defined (tools and arguments)?",
}

JUDGE_PROMPT = """You judge the validity of a customer-service task made from an exploration trajectory.
The trajectory may hold redundant or trial-and-error calls: judge the task's final effects (its gold write
actions and the values to communicate), not the path. Score each criterion from 1 (worst) to 10 (best):
{criteria}

Answer with one JSON object and nothing else:
{{"evaluations": {{{shape}}},
  "suggestions": ["<how the task could be better>", ...]}}"""


def _judge_system(intent: str) -> str:
    names = criteria_for(intent)
    return JUDGE_PROMPT.format(
        criteria="\n".join(f"- {name}: {CRITERIA_GUIDES[name]}" for name in names),
        shape=", ".join(f'"{name}": {{"score": <1-10>, "explanation": "<why>", "issues": [...]}}' for name in names))


def _judge_prompt(domain: str, task: JsonDict, trajectory: JsonDict, policy: str) -> str:
    instructions = task["user_scenario"]["instructions"]
    gold = [(a["name"], a["arguments"]) for a in task["evaluation_criteria"]["actions"]]
    parts = [f"Domain: {domain}",
             "Task (the customer's side):\n" + "\n".join(
                 f"- {key}: {instructions.get(key)}" for key in ("reason_for_call", "known_info", "unknown_info", "task_instructions")),
             f"Gold write actions:\n{_writes_text(gold)}",
             f"Values the agent must communicate: {json.dumps(task['evaluation_criteria'].get('communicate_info', []))}",
             f"Trajectory:\n{_trajectory_text(trajectory)}"]
    if "infeasible_reason" in instructions:
        forbidden = [(a["tool_name"], a["arguments"]) for a in instructions["actions_should_not_taken"]]
        parts[2:2] = [f"Why the task is infeasible: {instructions['infeasible_reason']}",
                      f"Forbidden actions:\n{_writes_text(forbidden)}", f"Policy:\n{policy}"]
    return "\n\n".join(parts)


def _verdict_parser(intent: str) -> Callable[[JsonDict], JsonDict]:
    def parse(reply: JsonDict) -> JsonDict:
        evaluations = reply.get("evaluations")
        if not isinstance(evaluations, dict):
            raise ReplyError("no 'evaluations' object")
        scored: JsonDict = {}
        for name in criteria_for(intent):
            entry = evaluations.get(name)
            score = entry.get("score") if isinstance(entry, dict) else None
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not 1 <= score <= 10:
                raise ReplyError(f"evaluations.{name}.score must be a number from 1 to 10")
            scored[name] = {"score": score, "explanation": str(entry.get("explanation") or ""),
                            "issues": entry.get("issues") if isinstance(entry.get("issues"), list) else []}
        suggestions = reply.get("suggestions")
        return {"evaluations": scored,
                "overall_score": round(statistics.fmean(e["score"] for e in scored.values()), 2),
                "suggestions": suggestions if isinstance(suggestions, list) else []}

    return parse


def judge(client: EndpointClient, domain: str, out_dir: str | Path, *, intent: str = "general", n: int | None = None,
          threshold: float = DEFAULT_THRESHOLD, attempts: int = DEFAULT_ATTEMPTS, progress: Progress | None = None) -> StageReport:
    """A validity report per task (the first ``n``), then the filtered tau2 task file: the tasks whose
    overall score is at least ``threshold``. The filter is redone on every run, so a new threshold needs
    no new judging."""
    intent = intent_of(intent)
    out = Path(out_dir)
    tasks = _input_log(out / tasks_log(intent), "summarise").records[:n]
    trajectories = {t["id"]: t for t in _input_log(out / TRAJECTORIES, "explore").records}
    reports, failed = JsonlLog(out / reports_log(intent)), JsonlLog(out / dropped_log(reports_log(intent)))
    done = reports.ids() | failed.ids()
    resumed = sum(t["id"] in done for t in tasks)
    policy = load_environment(domain).policy
    system = _judge_system(intent)
    for index, task in enumerate(tasks):
        if task["id"] not in done:
            trajectory = trajectories.get(task["trajectory_id"])
            if trajectory is None:
                raise DatasetError(str(out / TRAJECTORIES), f"no trajectory '{task['trajectory_id']}' for task '{task['id']}'")
            try:
                verdict = _ask_json(client, system, _judge_prompt(domain, task, trajectory, policy), _verdict_parser(intent), attempts)
            except BadReply as exc:
                failed.append({"id": task["id"], "reason": "bad_reply", "detail": exc.problem, "attempts": exc.attempts,
                               "reply": exc.reply[:RESPONSE_CHARS]})
            else:
                reports.append({"id": task["id"], **verdict, "scenario_type": intent, "task_id": task["id"],
                                "trajectory_id": task["trajectory_id"]})
        if progress:
            progress(index + 1, len(tasks))
    scores = {r["id"]: r["overall_score"] for r in reports.records}
    filtered = [t for t in tasks if t["id"] in scores and scores[t["id"]] >= threshold]
    write_task_file(domain, filtered, out / filtered_file(intent))
    judged = {t["id"] for t in tasks}
    report = StageReport("judge", domain, out / filtered_file(intent), total=len(tasks), kept=len(filtered), resumed=resumed,
                         dropped=Counter(r["reason"] for r in failed.records if r["id"] in judged))
    below = sum(1 for task_id, score in scores.items() if task_id in judged and score < threshold)
    if below:
        report.dropped[f"overall_score below {threshold:g}"] = below
    report.write(out, f"judge_{intent}")
    return report
