"""tau2-format task sets as benchmarks: tau2-bench's own retail and airline tasks, and any folder laid out
as tau2 files (Trajectory2Task's data sets among them).

A folder holds one task file per task type (``tasks_<type>.json``, e.g. ``tasks_ambiguous.json``) or one
``tasks.json`` whose tasks carry a ``type`` field (tau2's own tasks carry none: all ``standard``), and
optionally ``split_tasks.json`` (split name -> task ids; without it every task is in ``test``) and
``db.json`` (checked, and it must be the database the service hosts for the domain).

One instance is one task. Its input is what the agent-side episode needs (the domain and the task without
its grading parts); its reference is the grading parts (``evaluation_criteria`` and Trajectory2Task's
forbidden / required actions), hidden for the test split as for every benchmark.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets.base import BenchmarkData, DatasetError, Instance, ScenarioInfo, SplitData
from datasets.tau2 import DOMAINS, domain_dir

SCENARIOS = ("standard", "ambiguous", "changing", "infeasible")
SCENARIO_INFO = {
    "standard": ("Standard", "The user states everything needed."),
    "ambiguous": ("Ambiguous", "A deciding fact is withheld until the agent asks for it."),
    "changing": ("Changing", "The user switches to a new goal mid-dialogue; only the final goal may persist."),
    "infeasible": ("Infeasible", "The request breaks a policy rule; the agent must refuse and say why (and still do any allowed part)."),
}
# Trajectory2Task calls the standard intent "general".
SCENARIO_ALIASES = {"general": "standard"}
SPLITS = ("train", "dev", "test")
SPLIT_FILE = "split_tasks.json"
DB_FILE = "db.json"
TYPE_FIELD = "type"
TASK_FILE = re.compile(r"^tasks(?:_([a-z_]+))?\.json$")
# Keys of the structured instructions that only the grader reads: they go to the reference.
GRADING_INSTRUCTION_KEYS = ("actions_should_not_taken", "actions_should_be_taken", "infeasible_reason")
# What a scripted user says in a generated task (its withheld facts, its switch): the simulator's, like a reference.
SCRIPT_KEY = "user_script"
TAU2_VERSION = "tau2-bench-1"
TAU2_HOMEPAGE = "https://github.com/sierra-research/tau2-bench"
TAU2_CITATION = ("Barres et al., tau2-Bench: Evaluating Conversational Agents in a Dual-Control Environment, 2025; "
                 "Yao et al., tau-bench: A Benchmark for Tool-Agent-User Interaction in Real-World Domains, 2024.")


@dataclass(frozen=True)
class TaskSet:
    """Validated tau2 tasks of one domain, by scenario, with their split assignment."""

    domain: str
    tasks: dict[str, list[tuple[str, dict[str, Any]]]]  # scenario -> (task id, task JSON as the file holds it)
    splits: dict[str, list[str]]  # split -> task ids
    db_hash: str


def scenario_of(value: str, where: str, task_id: str) -> str:
    scenario = SCENARIO_ALIASES.get(value, value)
    if scenario not in SCENARIOS:
        raise DatasetError(where, f"task '{task_id}': {TYPE_FIELD}: unknown task type '{value}' "
                                  f"(known: {', '.join(SCENARIOS)}, or 'general')")
    return scenario


def _task_files(folder: Path) -> list[tuple[Path, str | None]]:
    """The task files of a folder with the type their name gives (None: ``tasks.json``, typed per task)."""
    found = [(path, match.group(1)) for path in sorted(folder.iterdir()) if (match := TASK_FILE.match(path.name))]
    if not found:
        raise DatasetError(str(folder), "no task file (tasks.json or tasks_<type>.json)")
    return found


def _named_domain(raw: list[Any]) -> str | None:
    """The domain the tasks name in their instructions (``retail``, or Trajectory2Task's ``retail_explore``)."""
    named = set()
    for task in raw:
        instructions = (task.get("user_scenario") or {}).get("instructions") if isinstance(task, dict) else None
        if isinstance(instructions, dict) and isinstance(instructions.get("domain"), str):
            named.add(next((d for d in DOMAINS if instructions["domain"].startswith(d)), instructions["domain"]))
    if len(named) > 1:
        raise DatasetError("tasks", f"tasks name several domains ({', '.join(sorted(named))}); import one domain at a time")
    return named.pop() if named else None


def _load_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(path.name, f"not valid JSON: {exc.msg}", row=exc.lineno) from None
    if not isinstance(data, list):
        raise DatasetError(path.name, "must hold a JSON list of tasks")
    return data


def read_task_folder(folder: str | Path, domain: str | None = None) -> TaskSet:
    """Read and check every file of a tau2-format folder; ``DatasetError`` names the file, task and field."""
    from evaluation.tau2.environment import load_environment
    from evaluation.tau2.replay import read_domain_tasks
    from evaluation.tau2.tasks import read_splits, task_to_json

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(str(folder), "not a folder")
    files = _task_files(folder)
    raw_files = {path: _load_list(path) for path, _ in files}
    named = _named_domain([t for raw in raw_files.values() for t in raw])
    domain = domain or named
    if domain not in DOMAINS:
        raise DatasetError(str(folder), f"unknown domain '{domain}': pass --domain ({', '.join(DOMAINS)})" if domain
                           else f"the tasks name no domain: pass --domain ({', '.join(DOMAINS)})")
    db_path = folder / DB_FILE
    db_hash = load_environment(domain).db_hash()
    if db_path.is_file():
        hosted = db_hash
        db_hash = load_environment(domain, db_path=db_path).db_hash()  # validates the records; DatasetError names them
        if db_hash != hosted:
            raise DatasetError(DB_FILE, f"differs from the {domain} database the service hosts; tasks must run on tau2's {domain} database")
    by_scenario: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    all_tasks = []
    seen: dict[str, str] = {}
    for path, file_type in files:
        stream = io.StringIO(json.dumps(raw_files[path]))
        stream.name = path.name  # errors name the file, not the stream
        for raw, task in zip(raw_files[path], read_domain_tasks(domain, stream)):
            if task.initial_state is not None and task.initial_state.message_history:
                raise DatasetError(path.name, f"task '{task.id}': initial_state.message_history: "
                                              "resuming a recorded conversation is not supported")
            if task.id in seen:
                raise DatasetError(path.name, f"task '{task.id}': id: duplicate task id (also in {seen[task.id]})")
            seen[task.id] = path.name
            declared = task.extra.get(TYPE_FIELD)
            if declared is not None and not isinstance(declared, str):
                raise DatasetError(path.name, f"task '{task.id}': {TYPE_FIELD}: must be a string")
            if file_type is not None and declared is not None and SCENARIO_ALIASES.get(declared, declared) != SCENARIO_ALIASES.get(file_type, file_type):
                raise DatasetError(path.name, f"task '{task.id}': {TYPE_FIELD}: '{declared}' in a file of type '{file_type}'")
            scenario = scenario_of(file_type or declared or "standard", path.name, task.id)
            by_scenario.setdefault(scenario, []).append((task.id, task_to_json(task)))
            all_tasks.append(task)
    split_path = folder / SPLIT_FILE
    if split_path.is_file():
        named_splits = read_splits(split_path, all_tasks)
        splits = {name: named_splits[name] for name in SPLITS if name in named_splits}
        if "test" not in splits:
            raise DatasetError(SPLIT_FILE, "no 'test' split", field_name="test")
    else:
        splits = {"test": list(seen)}
    return TaskSet(domain, by_scenario, splits, db_hash)


def write_task_folder(task_set: TaskSet, folder: str | Path) -> list[Path]:
    """Write a task set in the layout ``read_task_folder`` reads: ``tasks_<type>.json`` per scenario and
    ``split_tasks.json``; reading the folder back gives the same tasks and splits. Returns the files."""
    from evaluation.tau2.replay import read_domain_tasks
    from evaluation.tau2.tasks import write_tasks

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for scenario, tasks in task_set.tasks.items():
        stream = io.StringIO(json.dumps([task for _, task in tasks]))
        stream.name = f"tasks_{scenario}.json"
        path = out / stream.name
        write_tasks(read_domain_tasks(task_set.domain, stream), path)  # checked on the way out, as on the way in
        written.append(path)
    split_path = out / SPLIT_FILE
    split_path.write_text(json.dumps(task_set.splits, indent=4) + "\n", encoding="utf-8")
    return [*written, split_path]


def to_instance(domain: str, scenario: str, task_id: str, task: dict[str, Any], db_hash: str, *,
                private: tuple[str, ...] = ()) -> Instance:
    """Input: the task as the episode needs it; reference: its grading parts.

    ``private`` names more keys of the task that only the simulator reads (a generated task's scripted
    customer speaks its opening and its scenario): they go to the reference, so a hidden split's download
    does not hand an agent the way to recognise a task and its scenario."""
    hidden = {k: task[k] for k in private if k in task}
    agent_side = {k: v for k, v in task.items() if k not in ("evaluation_criteria", SCRIPT_KEY, *hidden)}
    instructions = (task.get("user_scenario") or {}).get("instructions")
    grading = {}
    if isinstance(instructions, dict):
        grading = {k: instructions[k] for k in GRADING_INSTRUCTION_KEYS if k in instructions}
        if "user_scenario" not in hidden:
            agent_side["user_scenario"] = {**task["user_scenario"],
                                           "instructions": {k: v for k, v in instructions.items() if k not in grading}}
    reference = {"evaluation_criteria": task.get("evaluation_criteria"), "instructions": grading}
    if SCRIPT_KEY in task:
        reference[SCRIPT_KEY] = task[SCRIPT_KEY]
    if hidden:
        reference["task_fields"] = hidden
    return Instance(key=task_id, input={"domain": domain, "db_hash": db_hash, "task": agent_side},
                    reference=reference, scenario=scenario)


def task_json(input: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The whole task again, from an instance's input and reference (inverse of ``to_instance``)."""
    task = {**input["task"], **(reference.get("task_fields") or {})}
    grading = reference.get("instructions") or {}
    if grading:
        scenario = task["user_scenario"]
        task["user_scenario"] = {**scenario, "instructions": {**scenario["instructions"], **grading}}
    if reference.get("evaluation_criteria") is not None:
        task["evaluation_criteria"] = reference["evaluation_criteria"]
    if SCRIPT_KEY in reference:
        task[SCRIPT_KEY] = reference[SCRIPT_KEY]
    return task


def benchmark_data(task_set: TaskSet, *, slug: str, name: str, version: str, description: str, license: str = "",
                   citation: str = "", homepage: str = "") -> BenchmarkData:
    scenarios = [s for s in SCENARIOS if s in task_set.tasks]
    by_id = {task_id: (scenario, task_id, task) for scenario in scenarios for task_id, task in task_set.tasks[scenario]}
    splits = [
        SplitData(split, [to_instance(task_set.domain, *by_id[task_id], task_set.db_hash) for task_id in ids],
                  labels_hidden=(split == "test"))
        for split, ids in task_set.splits.items()
    ]
    return BenchmarkData(
        slug=slug, name=name, kind="tau2", version=version, license=license, description=description,
        scenarios=[ScenarioInfo(s, *SCENARIO_INFO[s]) for s in scenarios], splits=splits, citation=citation,
        homepage=homepage, extra={"domain": task_set.domain, "db_hash": task_set.db_hash},
    )


def load_domain(domain: str) -> BenchmarkData:
    """tau2-bench's own tasks of one domain, with its train / test split."""
    task_set = read_task_folder(domain_dir(domain), domain)
    return benchmark_data(
        task_set, slug=f"tau2-{domain}", name=f"tau2-bench {domain}", version=TAU2_VERSION, license="MIT",
        description=(f"tau2-bench's {domain} customer-service tasks: the agent follows the domain policy with its tools while an "
                     "LLM plays the customer; a trial succeeds when the final database equals the gold replay's and the "
                     "task's other reward components hold. Metric: pass^k."),
        citation=TAU2_CITATION, homepage=TAU2_HOMEPAGE,
    )


def load_retail() -> BenchmarkData:
    return load_domain("retail")


def load_airline() -> BenchmarkData:
    return load_domain("airline")
