"""Gold replays of tau2 tasks: a fresh database, the task's initial state, then its gold actions.

Shared by the grader (the DB component compares a trial's final database with the gold replay's) and
``manage.py verify_tool_tasks`` (which checks that a task file's gold actions run on a database).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from evaluation.tau2.environment import Tau2Environment, load_environment
from evaluation.tau2.tasks import Task, read_tasks, task_to_json

DB = dict[str, Any]
Record = Any
EnvAssertionFunction = Callable[..., bool]

# The env assertion functions (tau2's ``assert_*`` environment functions) each domain offers, called as
# ``function(db, **arguments) -> bool``. tau2's retail and airline domains define none, so a task file
# that asserts on them is rejected when it is read.
ENV_ASSERTIONS: dict[str, dict[str, EnvAssertionFunction]] = {"retail": {}, "airline": {}}


def read_domain_tasks(domain: str, source: str | Path | IO[str]) -> list[Task]:
    """``read_tasks`` checked against the domain's tool names and env assertion functions."""
    return read_tasks(source, tool_names=load_environment(domain).tool_names(),
                      assertion_names=assertion_functions(domain))


def assertion_functions(domain: str) -> Collection[str]:
    return ENV_ASSERTIONS.get(domain, {}).keys()


def _history_tool_calls(history: Iterable[dict[str, Any]]) -> Iterable[tuple[str, Any]]:
    """Tool calls of a tau2 message history, in tau2's shape (``name``, ``arguments``) or OpenAI's."""
    for message in history:
        for call in message.get("tool_calls") or []:
            function = call.get("function") or call
            yield str(function.get("name") or ""), function.get("arguments") or {}


def prepared_environment(domain: str, task: Task, db_path: str | Path | None = None) -> Tau2Environment:
    """A fresh environment after the task's initial state: its data updates, its initialization actions,
    and the tool calls already made in its message history (as tau2 sets a task's state)."""
    env = load_environment(domain, db_path=db_path)
    state = task.initial_state
    if state is None:
        return env
    if state.initialization_data is not None or state.initialization_actions:
        initial = task_to_json(task)["initial_state"]
        env.run_initialization(initial.get("initialization_data"), initial.get("initialization_actions"))
    for name, arguments in _history_tool_calls(state.message_history or []):
        env.call(name, arguments)
    return env


@dataclass
class GoldReplay:
    env: Tau2Environment  # after the replay
    errors: list[str] = field(default_factory=list)  # "<tool name>: <message>" per gold action that failed
    failed_writes: list[str] = field(default_factory=list)  # the failed ones that were meant to change the database

    @property
    def clean(self) -> bool:
        return not self.errors


def replay_gold(domain: str, task: Task, db_path: str | Path | None = None) -> GoldReplay:
    """Run the task's gold actions (requestor ``assistant``) on a prepared environment, in order.

    A failing action is recorded and the replay goes on, as in tau2; some tasks' gold actions fail on
    purpose (a wrong e-mail tried first, an exchange the policy forbids).
    """
    replay = GoldReplay(prepared_environment(domain, task, db_path))
    for action in task.gold_actions:
        if not action.by_assistant:
            replay.errors.append(f"{action.name}: requested by the {action.requestor}, but {domain} has no user tools")
            continue
        result = replay.env.call(action.name, action.arguments)
        if not result.ok:
            replay.errors.append(f"{action.name}: {result.output}")
            if replay.env.is_write(action.name):
                replay.failed_writes.append(action.action_id)
    return replay


def changed_records(before: DB, after: DB) -> dict[str, Record | None]:
    """``{"<table>/<key>": record after}`` for every record added, changed or removed (then ``None``)."""
    changed: dict[str, Record | None] = {}
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table), after.get(table)
        if old == new:
            continue
        if not isinstance(old, dict) or not isinstance(new, dict):
            changed[table] = new
            continue
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changed[f"{table}/{key}"] = new.get(key)
    return changed


def record_at(db: DB, address: str) -> Record | None:
    """The record a ``changed_records`` address names, or ``None``."""
    table, _, key = address.partition("/")
    value = db.get(table)
    return value.get(key) if key and isinstance(value, dict) else value


def verify_tasks(domain: str, tasks: Iterable[Task], db_path: str | Path | None = None,
                 progress: Callable[[Iterable[Task]], Iterable[Task]] = iter) -> dict[str, dict[str, Any]]:
    """Replay every task's gold actions on a fresh database: ``{task id: {"errors": [...], "changed": {...}}}``,
    with ``errors`` as ``"<tool name>: <message>"`` and ``changed`` the records the replay left different
    from the database it started on (after the task's initial state)."""
    base = load_environment(domain, db_path=db_path).db
    report: dict[str, dict[str, Any]] = {}
    for task in progress(tasks):
        replay = replay_gold(domain, task, db_path)
        before = base if task.initial_state is None else prepared_environment(domain, task, db_path).db
        report[task.id] = {"errors": replay.errors, "changed": changed_records(before, replay.env.db)}
    return report


def write_report(report: dict[str, dict[str, Any]], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
