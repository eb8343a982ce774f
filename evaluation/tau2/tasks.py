"""tau2-bench task files, with Trajectory2Task's extra instruction fields, as typed dataclasses.

``read_tasks`` checks every field's type (and, given a domain, every tool and assertion name) and raises
``TaskFileError`` (a ``DatasetError``) naming the file, the task id and the field on the first problem, so a
file is read whole or not at all. ``write_tasks`` writes what was read: reading then writing a tau2 or
Trajectory2Task file gives back the same JSON, except that keys holding ``null`` are left out. Keys this
module does not know are kept verbatim in ``extra`` so nothing is lost on the way through.

Semantics (tau2-bench ``src/tau2/data_model/tasks.py``): an action without ``requestor`` is the
assistant's; ``compare_args`` of ``None`` compares every argument; a missing ``reward_basis`` means
``[DB, COMMUNICATE]``. Trajectory2Task keeps ``actions_should_not_taken`` / ``actions_should_be_taken``
(``[{"tool_name", "arguments"}]``) and ``infeasible_reason`` in ``user_scenario.instructions``, and its
generated records may lack ``id``, which is then their ``trajectory_id``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, TypeVar

from datasets.base import DatasetError

JsonDict = dict[str, Any]
T = TypeVar("T")

REWARD_TYPES = ("DB", "ENV_ASSERTION", "NL_ASSERTION", "ACTION", "COMMUNICATE", "PROHIBITED_ACTION", "REQUIRED_ACTION")
DEFAULT_REWARD_BASIS = ("DB", "COMMUNICATE")
REQUESTORS = ("assistant", "user")
MESSAGE_ROLES = ("system", "user", "assistant", "tool")


class TaskFileError(DatasetError):
    """A bad task file; the message reads ``<file>: task '<id>': <field>: <problem>``."""

    def __init__(self, path: str, task_id: str, field_path: str, message: str):
        where = f"task '{task_id}'" + (f": {field_path}" if field_path else "")
        super().__init__(path, f"{where}: {message}")
        self.task_id = task_id
        self.field_name = field_path


# -- the data shapes ---------------------------------------------------------------------------------


@dataclass
class Description:
    purpose: str | None = None
    relevant_policies: str | None = None
    notes: str | None = None
    extra: JsonDict = field(default_factory=dict)


@dataclass
class ActionPattern:
    """Trajectory2Task's forbidden / required action: a tool, and the arguments that must match (none: any call)."""

    tool_name: str
    arguments: JsonDict = field(default_factory=dict)
    extra: JsonDict = field(default_factory=dict)


@dataclass
class StructuredInstructions:
    domain: str
    reason_for_call: str
    task_instructions: str
    known_info: str | None = None
    unknown_info: str | None = None
    infeasible_reason: str | None = None
    actions_should_not_taken: list[ActionPattern] | None = None
    actions_should_be_taken: list[ActionPattern] | None = None
    extra: JsonDict = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"Domain: {self.domain}", f"Reason for call:\n{_indent(self.reason_for_call)}"]
        if self.known_info is not None:
            parts.append(f"Known info:\n{_indent(self.known_info)}")
        if self.unknown_info is not None:
            parts.append(f"Unknown info:\n{_indent(self.unknown_info)}")
        parts.append(f"Task instructions:\n{_indent(self.task_instructions)}")
        return "\n".join(parts)


@dataclass
class UserScenario:
    instructions: StructuredInstructions | str
    persona: str | None = None
    extra: JsonDict = field(default_factory=dict)

    def __str__(self) -> str:
        """The scenario as the user simulator reads it (tau2's layout)."""
        parts = [f"Persona:\n{_indent(self.persona)}"] if self.persona is not None else []
        parts.append(f"Instructions:\n{_indent(str(self.instructions))}")
        return "\n".join(parts)


@dataclass
class Action:
    action_id: str
    name: str
    arguments: JsonDict
    requestor: str | None = None  # None: not given, which tau2 reads as "assistant"
    info: str | None = None
    compare_args: list[str] | None = None  # None: every argument is compared
    extra: JsonDict = field(default_factory=dict)

    @property
    def by_assistant(self) -> bool:
        return (self.requestor or "assistant") == "assistant"


@dataclass
class EnvFunctionCall:
    env_type: str
    func_name: str
    arguments: JsonDict
    extra: JsonDict = field(default_factory=dict)


@dataclass
class EnvAssertion(EnvFunctionCall):
    assert_value: bool | None = None  # None: not given, which tau2 reads as True
    message: str | None = None

    @property
    def expected(self) -> bool:
        return True if self.assert_value is None else self.assert_value


@dataclass
class InitializationData:
    agent_data: JsonDict | None = None
    user_data: JsonDict | None = None
    extra: JsonDict = field(default_factory=dict)


@dataclass
class InitialState:
    initialization_data: InitializationData | None = None
    initialization_actions: list[EnvFunctionCall] | None = None
    message_history: list[JsonDict] | None = None  # tau2 messages, kept as written
    extra: JsonDict = field(default_factory=dict)


@dataclass
class EvaluationCriteria:
    actions: list[Action] | None = None
    env_assertions: list[EnvAssertion] | None = None
    communicate_info: list[str] | None = None
    nl_assertions: list[str] | None = None
    reward_basis: list[str] | None = None  # None: not given, which tau2 reads as [DB, COMMUNICATE]
    extra: JsonDict = field(default_factory=dict)


@dataclass
class Task:
    id: str
    user_scenario: UserScenario
    description: Description | None = None
    ticket: str | None = None
    initial_state: InitialState | None = None
    evaluation_criteria: EvaluationCriteria | None = None
    extra: JsonDict = field(default_factory=dict)  # issues, annotations, trajectory_id, ...
    # Trajectory2Task's intermediate records have no "id"; it is their trajectory_id, and is not written back.
    id_from_trajectory_id: bool = False

    @property
    def instructions(self) -> StructuredInstructions | None:
        instructions = self.user_scenario.instructions
        return instructions if isinstance(instructions, StructuredInstructions) else None

    @property
    def gold_actions(self) -> list[Action]:
        return list(self.evaluation_criteria.actions or []) if self.evaluation_criteria else []

    @property
    def prohibited_actions(self) -> list[ActionPattern]:
        return list(self.instructions.actions_should_not_taken or []) if self.instructions else []

    @property
    def required_actions(self) -> list[ActionPattern]:
        return list(self.instructions.actions_should_be_taken or []) if self.instructions else []

    @property
    def reward_basis(self) -> list[str]:
        """The components whose product is the reward. Where the file leaves the basis out, tau2's default,
        plus Trajectory2Task's forbidden / required action checks when the task defines them."""
        given = self.evaluation_criteria.reward_basis if self.evaluation_criteria else None
        if given is not None:
            return list(given)
        basis = list(DEFAULT_REWARD_BASIS)
        if self.prohibited_actions:
            basis.append("PROHIBITED_ACTION")
        if self.required_actions:
            basis.append("REQUIRED_ACTION")
        return basis


def _indent(text: str) -> str:
    return "\n".join("\t" + line for line in text.split("\n"))


# -- reading -----------------------------------------------------------------------------------------


class _Fields:
    """Typed access to one JSON object of one task, with errors that say where."""

    def __init__(self, reader: "_TaskReader", obj: Any, where: str, known: Iterable[str]):
        self.reader, self.where = reader, where
        if not isinstance(obj, dict):
            reader.fail(where, f"must be an object, not {_type_name(obj)}")
        self.obj: JsonDict = obj
        self.known = set(known)

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.reader.fail(self.path(key), "is missing")
            return None
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
            self.reader.fail(self.path(key), f"must be {_kind_name(kind)}, not {_type_name(value)}")
        return value

    def str_list(self, key: str) -> list[str] | None:
        values = self.get(key, list)
        if values is not None:
            for i, value in enumerate(values):
                if not isinstance(value, str):
                    self.reader.fail(f"{self.path(key)}[{i}]", f"must be a string, not {_type_name(value)}")
        return values

    def objects(self, key: str, parse: Callable[[Any, str], T]) -> list[T] | None:
        values = self.get(key, list)
        return None if values is None else [parse(value, f"{self.path(key)}[{i}]") for i, value in enumerate(values)]

    def extra(self) -> JsonDict:
        return {k: v for k, v in self.obj.items() if k not in self.known}


class _TaskReader:
    def __init__(self, label: str, task_id: str, tool_names: Collection[str] | None, assertion_names: Collection[str] | None):
        self.label, self.task_id = label, task_id
        self.tool_names, self.assertion_names = tool_names, assertion_names

    def fail(self, where: str, message: str) -> None:
        raise TaskFileError(self.label, self.task_id, where, message)

    def task(self, raw: Any) -> Task:
        f = _Fields(self, raw, "", ("id", "description", "user_scenario", "ticket", "initial_state", "evaluation_criteria"))
        task_id = f.get("id", str)
        from_trajectory = task_id is None and isinstance(raw.get("trajectory_id"), str)
        if task_id is None and not from_trajectory:
            self.fail("id", "is missing")
        return Task(
            id=task_id or raw["trajectory_id"],
            description=self._optional(f, "description", self.description),
            user_scenario=self.user_scenario(f.get("user_scenario", dict, required=True), "user_scenario"),
            ticket=f.get("ticket", str),
            initial_state=self._optional(f, "initial_state", self.initial_state),
            evaluation_criteria=self._optional(f, "evaluation_criteria", self.evaluation_criteria),
            extra=f.extra(),
            id_from_trajectory_id=from_trajectory,
        )

    @staticmethod
    def _optional(f: _Fields, key: str, parse: Callable[[Any, str], T]) -> T | None:
        value = f.obj.get(key)
        return None if value is None else parse(value, f.path(key))

    def description(self, raw: Any, where: str) -> Description:
        f = _Fields(self, raw, where, ("purpose", "relevant_policies", "notes"))
        return Description(f.get("purpose", str), f.get("relevant_policies", str), f.get("notes", str), f.extra())

    def user_scenario(self, raw: Any, where: str) -> UserScenario:
        f = _Fields(self, raw, where, ("persona", "instructions"))
        instructions = f.get("instructions", (str, dict), required=True)
        if isinstance(instructions, dict):
            instructions = self.instructions(instructions, f.path("instructions"))
        return UserScenario(instructions=instructions, persona=f.get("persona", str), extra=f.extra())

    def instructions(self, raw: Any, where: str) -> StructuredInstructions:
        f = _Fields(self, raw, where, ("domain", "reason_for_call", "known_info", "unknown_info", "task_instructions",
                                       "infeasible_reason", "actions_should_not_taken", "actions_should_be_taken"))
        return StructuredInstructions(
            domain=f.get("domain", str, required=True),
            reason_for_call=f.get("reason_for_call", str, required=True),
            task_instructions=f.get("task_instructions", str, required=True),
            known_info=f.get("known_info", str),
            unknown_info=f.get("unknown_info", str),
            infeasible_reason=f.get("infeasible_reason", str),
            actions_should_not_taken=f.objects("actions_should_not_taken", self.action_pattern),
            actions_should_be_taken=f.objects("actions_should_be_taken", self.action_pattern),
            extra=f.extra(),
        )

    def action_pattern(self, raw: Any, where: str) -> ActionPattern:
        f = _Fields(self, raw, where, ("tool_name", "arguments"))
        name = f.get("tool_name", str, required=True)
        self._check_tool(name, f.path("tool_name"))
        return ActionPattern(tool_name=name, arguments=f.get("arguments", dict) or {}, extra=f.extra())

    def action(self, raw: Any, where: str) -> Action:
        f = _Fields(self, raw, where, ("action_id", "requestor", "name", "arguments", "info", "compare_args"))
        name = f.get("name", str, required=True)
        self._check_tool(name, f.path("name"))
        requestor = f.get("requestor", str)
        if requestor is not None and requestor not in REQUESTORS:
            self.fail(f.path("requestor"), f"must be one of {', '.join(REQUESTORS)}, not '{requestor}'")
        return Action(
            action_id=f.get("action_id", str, required=True),
            name=name,
            arguments=f.get("arguments", dict, required=True),
            requestor=requestor,
            info=f.get("info", str),
            compare_args=f.str_list("compare_args"),
            extra=f.extra(),
        )

    def _check_tool(self, name: str, where: str) -> None:
        if self.tool_names is not None and name not in self.tool_names:
            self.fail(where, f"unknown tool '{name}'")

    def _function_call_fields(self, f: _Fields) -> tuple[str, str, JsonDict]:
        env_type = f.get("env_type", str, required=True)
        if env_type not in REQUESTORS:
            self.fail(f.path("env_type"), f"must be one of {', '.join(REQUESTORS)}, not '{env_type}'")
        return env_type, f.get("func_name", str, required=True), f.get("arguments", dict, required=True)

    def function_call(self, raw: Any, where: str) -> EnvFunctionCall:
        f = _Fields(self, raw, where, ("env_type", "func_name", "arguments"))
        env_type, func_name, arguments = self._function_call_fields(f)
        self._check_tool(func_name, f.path("func_name"))
        return EnvFunctionCall(env_type, func_name, arguments, f.extra())

    def env_assertion(self, raw: Any, where: str) -> EnvAssertion:
        f = _Fields(self, raw, where, ("env_type", "func_name", "arguments", "assert_value", "message"))
        env_type, func_name, arguments = self._function_call_fields(f)
        if self.assertion_names is not None and func_name not in self.assertion_names:
            known = ", ".join(sorted(self.assertion_names)) or "none"
            self.fail(f.path("func_name"), f"unsupported assertion function '{func_name}' (this domain has: {known})")
        return EnvAssertion(env_type, func_name, arguments, f.extra(), assert_value=f.get("assert_value", bool),
                            message=f.get("message", str))

    def initial_state(self, raw: Any, where: str) -> InitialState:
        f = _Fields(self, raw, where, ("initialization_data", "initialization_actions", "message_history"))
        data = self._optional(f, "initialization_data", self.initialization_data)
        history = f.get("message_history", list)
        for i, message in enumerate(history or []):
            if not isinstance(message, dict) or message.get("role") not in MESSAGE_ROLES:
                self.fail(f"{f.path('message_history')}[{i}].role", f"must be one of {', '.join(MESSAGE_ROLES)}")
        return InitialState(data, f.objects("initialization_actions", self.function_call), history, f.extra())

    def initialization_data(self, raw: Any, where: str) -> InitializationData:
        f = _Fields(self, raw, where, ("agent_data", "user_data"))
        return InitializationData(f.get("agent_data", dict), f.get("user_data", dict), f.extra())

    def evaluation_criteria(self, raw: Any, where: str) -> EvaluationCriteria:
        f = _Fields(self, raw, where, ("actions", "env_assertions", "communicate_info", "nl_assertions", "reward_basis"))
        basis = f.str_list("reward_basis")
        for i, name in enumerate(basis or []):
            if name not in REWARD_TYPES:
                self.fail(f"{f.path('reward_basis')}[{i}]", f"unknown reward type '{name}' (known: {', '.join(REWARD_TYPES)})")
        return EvaluationCriteria(
            actions=f.objects("actions", self.action),
            env_assertions=f.objects("env_assertions", self.env_assertion),
            communicate_info=f.str_list("communicate_info"),
            nl_assertions=f.str_list("nl_assertions"),
            reward_basis=basis,
            extra=f.extra(),
        )


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", dict: "an object", list: "a list", bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _type_name(value: Any) -> str:
    return {str: "a string", dict: "an object", list: "a list", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _load_json(source: str | Path | IO[str]) -> tuple[str, Any]:
    label = str(source) if isinstance(source, (str, Path)) else str(getattr(source, "name", "<stream>"))
    try:
        if isinstance(source, (str, Path)):
            with open(source, encoding="utf-8") as handle:
                return label, json.load(handle)
        return label, json.load(source)
    except json.JSONDecodeError as exc:
        raise DatasetError(label, f"not valid JSON: {exc.msg}", row=exc.lineno) from None
    except OSError as exc:
        raise DatasetError(label, f"cannot be read: {exc.strerror or exc}") from None


def read_tasks(source: str | Path | IO[str], *, tool_names: Collection[str] | None = None,
               assertion_names: Collection[str] | None = None) -> list[Task]:
    """Every task of a tau2 task file (a JSON list of tasks).

    ``tool_names`` (the domain's tools) checks every gold action, initialization action and forbidden or
    required action; ``assertion_names`` (the env assertion functions the domain supports) checks every
    env assertion. Raises ``DatasetError`` on the first problem; no task is returned from a bad file.
    """
    label, data = _load_json(source)
    if not isinstance(data, list):
        raise DatasetError(label, f"must hold a JSON list of tasks, not {_type_name(data)}")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data):
        hint = raw.get("id", raw.get("trajectory_id")) if isinstance(raw, dict) else None
        reader = _TaskReader(label, str(hint) if hint is not None else f"#{index}", tool_names, assertion_names)
        task = reader.task(raw)
        if task.id in seen:
            reader.fail("id", f"duplicate task id (also task #{seen[task.id]} of the file)")
        seen[task.id] = index
        tasks.append(task)
    return tasks


def read_splits(source: str | Path | IO[str], tasks: Iterable[Task] | None = None) -> dict[str, list[str]]:
    """A tau2 ``split_tasks.json``: split name -> task ids. Given the tasks, every id must name one of them."""
    label, data = _load_json(source)
    if not isinstance(data, dict):
        raise DatasetError(label, f"must hold a JSON object of splits, not {_type_name(data)}")
    known = {task.id for task in tasks} if tasks is not None else None
    splits: dict[str, list[str]] = {}
    for name, ids in data.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DatasetError(label, "must be a list of task ids", field_name=name)
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise DatasetError(label, f"task '{duplicate}' is listed twice", field_name=name)
        unknown = [i for i in ids if known is not None and i not in known]
        if unknown:
            raise DatasetError(label, f"unknown task '{unknown[0]}'" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                               field_name=name)
        splits[name] = list(ids)
    return splits


# -- writing -----------------------------------------------------------------------------------------


def _compact(pairs: Iterable[tuple[str, Any]], extra: JsonDict) -> JsonDict:
    out = {key: value for key, value in pairs if value is not None}
    out.update(extra)
    return out


def _pattern_json(p: ActionPattern) -> JsonDict:
    return _compact([("tool_name", p.tool_name), ("arguments", p.arguments)], p.extra)


def _patterns_json(patterns: list[ActionPattern] | None) -> list[JsonDict] | None:
    return None if patterns is None else [_pattern_json(p) for p in patterns]


def _instructions_json(i: StructuredInstructions | str) -> JsonDict | str:
    if isinstance(i, str):
        return i
    return _compact([
        ("task_instructions", i.task_instructions), ("domain", i.domain), ("reason_for_call", i.reason_for_call),
        ("known_info", i.known_info), ("unknown_info", i.unknown_info), ("infeasible_reason", i.infeasible_reason),
        ("actions_should_not_taken", _patterns_json(i.actions_should_not_taken)),
        ("actions_should_be_taken", _patterns_json(i.actions_should_be_taken)),
    ], i.extra)


def _action_json(a: Action) -> JsonDict:
    return _compact([("action_id", a.action_id), ("requestor", a.requestor), ("name", a.name), ("arguments", a.arguments),
                     ("info", a.info), ("compare_args", a.compare_args)], a.extra)


def _call_json(c: EnvFunctionCall) -> JsonDict:
    pairs = [("env_type", c.env_type), ("func_name", c.func_name), ("arguments", c.arguments)]
    if isinstance(c, EnvAssertion):
        pairs += [("assert_value", c.assert_value), ("message", c.message)]
    return _compact(pairs, c.extra)


def _list(items: list[T] | None, to_json: Callable[[T], JsonDict]) -> list[JsonDict] | None:
    return None if items is None else [to_json(item) for item in items]


def task_to_json(task: Task) -> JsonDict:
    """The task as a tau2 task file holds it (``null`` fields left out)."""
    d, s, ec, st = task.description, task.initial_state, task.evaluation_criteria, task.user_scenario
    return _compact([
        ("id", None if task.id_from_trajectory_id else task.id),
        ("description", d and _compact([("purpose", d.purpose), ("relevant_policies", d.relevant_policies), ("notes", d.notes)], d.extra)),
        ("user_scenario", _compact([("persona", st.persona), ("instructions", _instructions_json(st.instructions))], st.extra)),
        ("ticket", task.ticket),
        ("initial_state", s and _compact([
            ("initialization_data", s.initialization_data and _compact(
                [("agent_data", s.initialization_data.agent_data), ("user_data", s.initialization_data.user_data)],
                s.initialization_data.extra)),
            ("initialization_actions", _list(s.initialization_actions, _call_json)),
            ("message_history", s.message_history),
        ], s.extra)),
        ("evaluation_criteria", ec and _compact([
            ("actions", _list(ec.actions, _action_json)), ("env_assertions", _list(ec.env_assertions, _call_json)),
            ("communicate_info", ec.communicate_info), ("nl_assertions", ec.nl_assertions), ("reward_basis", ec.reward_basis),
        ], ec.extra)),
    ], task.extra)


def write_tasks(tasks: Iterable[Task], path: str | Path) -> None:
    """Write a tau2 task file (indented JSON, as tau2 ships them); the file appears whole or not at all."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps([task_to_json(t) for t in tasks], indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(target)
