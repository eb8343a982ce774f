"""tau2-bench's environments in plain Python: a JSON database, the domain's tools, and its policy.

The tools behave as tau2-bench's (``src/tau2/domains/{retail,airline}/tools.py``): same names, JSON
schemas (``schemas/<domain>.json`` holds the schemas tau2 publishes, byte for byte), arguments, results,
error texts and database effects, so that a task's gold actions change the same records in the same way
and fail at the same calls. What the agent sees follows tau2's ``Environment.get_response``: a result is
serialised by ``to_json_str`` and a failure is answered ``"Error: <message>"``.

Arguments: tau2 passes them to the tool function unchecked, so Python's own binding errors
("missing 1 required positional argument") and pydantic's errors for the nested records the tools build
(an airline ``flights`` item without ``date``) are what an agent sees; both are reproduced here and
reported as ``invalid``. Top-level arguments of the wrong JSON type, which tau2 lets through to fail
somewhere inside the tool (or not at all), are rejected up front with pydantic's error for tau2's
parameter model. Values outside an enum are left to the tools, which answer them as tau2 does.
"""

from __future__ import annotations

import ast
import copy
import gc
import importlib
import json
import operator
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

from datasets.base import DatasetError
from datasets.tau2 import domain_dir
from evaluation.canonical import canonical_hash
from evaluation.tau2.records import FLOAT, INT_ARGUMENT, STR, Issue, ListOf, MapOf, Model, RecordError, Shape
from evaluation.tool_use.calls import CallResult, decode_arguments

DB = dict[str, Any]
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_DOMAIN_MODULES = {"retail": "evaluation.tau2.retail", "airline": "evaluation.tau2.airline"}


class ToolType(str, Enum):
    """tau2's conceptual tool classes; only WRITE tools change the database."""

    READ = "read"
    WRITE = "write"
    THINK = "think"
    GENERIC = "generic"


_TOOL_TYPE_ATTR = "__tau2_tool_type__"


def tool(tool_type: ToolType) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a toolkit method as a tool the agent can call."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, _TOOL_TYPE_ATTR, tool_type)
        return func

    return mark


# --- calculate: tau2 evaluates the expression with Python's eval; this walks the same syntax tree. ----

_CALCULATOR_CHARACTERS = frozenset("0123456789+-*/(). ")
_BINARY_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                     ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow}
_UNARY_OPERATORS = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# eval would compute 9**9**9 until memory runs out; no price calculation needs exponents this large.
_MAX_EXPONENT = 1000


def _arithmetic(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _arithmetic(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPERATORS:
        return _UNARY_OPERATORS[type(node.op)](_arithmetic(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPERATORS:
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError("Exponent too large")
        return _BINARY_OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Tuple):  # "()" is the only tuple the allowed characters can spell
        return ()
    raise ValueError("Invalid expression")


def calculate_expression(expression: str) -> str:
    """tau2's ``calculate``: digits, + - * / ( ) . and spaces; the value rounded to 2 decimals."""
    if not all(char in _CALCULATOR_CHARACTERS for char in expression):
        raise ValueError("Invalid characters in expression")
    # Parsing as eval does (filename "<string>") gives the same SyntaxError texts.
    return str(round(float(_arithmetic(ast.parse(expression, filename="<string>", mode="eval"))), 2))


class Toolkit:
    """A domain's tools over one database. Subclasses are named as tau2's (``RetailTools``,
    ``AirlineTools``) because Python's binding errors, which tau2 shows the agent, name the method."""

    def __init__(self, db: DB):
        self.db = db

    @classmethod
    def tool_types(cls) -> dict[str, ToolType]:
        return {name: getattr(member, _TOOL_TYPE_ATTR) for name in dir(cls)
                if (member := getattr(cls, name, None)) is not None and hasattr(member, _TOOL_TYPE_ATTR)}

    @tool(ToolType.GENERIC)
    def calculate(self, expression: str) -> str:
        return calculate_expression(expression)

    @tool(ToolType.GENERIC)
    def transfer_to_human_agents(self, summary: str) -> str:
        return "Transfer successful"


@dataclass(frozen=True)
class Domain:
    """What a domain module declares: its toolkit, the shapes of its database tables, and the record
    models its tool schemas reference (``#/$defs/<name>``) for nested arguments."""

    name: str
    toolkit: type[Toolkit]
    tables: dict[str, Model]  # table name -> shape of one record; tables map ids to records
    argument_models: dict[str, Model] = field(default_factory=dict)


# --- serialisation and argument checks ------------------------------------------------------------------

def to_json_str(result: Any) -> str:
    """tau2's ``Environment.to_json_str`` for what these tools return: strings as they are, records (the
    ``model_dump()`` of a pydantic model) and lists of them as JSON with json's default separators."""
    return result if isinstance(result, str) else json.dumps(result, default=str)


def _binding_error(qualname: str, parameters: list[str], arguments: dict[str, Any]) -> str | None:
    """Python's TypeError text for calling ``qualname(**arguments)``, or None when the call binds."""
    for name in arguments:
        if name not in parameters:
            return f"{qualname}() got an unexpected keyword argument '{name}'"
    missing = [f"'{name}'" for name in parameters if name not in arguments]
    if not missing:
        return None
    listed = missing[0] if len(missing) == 1 else (
        f"{missing[0]} and {missing[1]}" if len(missing) == 2 else f"{', '.join(missing[:-1])}, and {missing[-1]}")
    plural = "s" if len(missing) > 1 else ""
    return f"{qualname}() missing {len(missing)} required positional argument{plural}: {listed}"


@dataclass(frozen=True)
class _ToolSignature:
    """How one tool's arguments are checked, derived from its published JSON schema."""

    qualname: str
    parameters: list[str]
    shapes: dict[str, Shape]  # top-level JSON types, as pydantic would check tau2's parameter model
    item_models: dict[str, Model]  # list arguments whose items tau2 builds into a pydantic model

    def check(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The arguments to call the tool with, or the error the agent sees."""
        if error := _binding_error(self.qualname, self.parameters, arguments):
            return arguments, error
        issues: list[Issue] = []
        for name, shape in self.shapes.items():
            shape.check(arguments[name], (name,), issues)
        if issues:
            return arguments, str(RecordError("parameters", issues))
        converted = dict(arguments)
        for name, model in self.item_models.items():
            items = []
            for item in arguments[name]:
                try:
                    items.append(model.validate(item, model.name))
                except RecordError as exc:  # tau2 builds the items one by one and stops at the first bad one
                    return arguments, str(exc)
            converted[name] = items
        return converted, None


class _Any(Shape):
    """Anything: the items of a list whose items a record model checks next."""

    def check(self, value: Any, loc: tuple[str | int, ...], issues: list[Issue]) -> Any:
        return value


_ANY = _Any()


# Top-level arguments keep the values the agent sent (tau2 passes them on as they are); only their JSON
# type is checked, so a numeric string is no integer here.
_JSON_TYPES: dict[str, Shape] = {"string": STR, "integer": INT_ARGUMENT, "number": FLOAT}


def _signature(qualname: str, schema: dict[str, Any], models: dict[str, Model]) -> _ToolSignature:
    parameters = schema["function"]["parameters"]
    shapes: dict[str, Shape] = {}
    item_models: dict[str, Model] = {}
    for name, prop in parameters["properties"].items():
        if prop["type"] != "array":
            shapes[name] = _JSON_TYPES[prop["type"]]
            continue
        items = prop["items"]
        if "anyOf" in items:  # List[Model | dict]: a list of objects, each built into the model
            ref = next(option["$ref"] for option in items["anyOf"] if "$ref" in option)
            model = models[ref.rsplit("/", 1)[-1]]
            shapes[name] = ListOf(MapOf(_ANY))
            item_models[name] = model
        else:
            shapes[name] = ListOf(_JSON_TYPES[items["type"]])
    return _ToolSignature(qualname, list(parameters["properties"]), shapes, item_models)


# --- the environment ------------------------------------------------------------------------------------

class Tau2Environment:
    """One episode's database and the domain's tools. ``call`` never raises for a bad call."""

    def __init__(self, domain: Domain, db: DB, policy: str, db_hash: str | None = None):
        self.domain = domain.name
        self.policy = policy
        self._domain = domain
        self._toolkit = domain.toolkit(db)
        self._schemas = _schemas(domain.name)
        self._types = domain.toolkit.tool_types()
        self._signatures = _signatures(domain.name)
        self._db_hash: str | None = db_hash  # given when known (a fresh copy of a snapshot), else computed on demand

    @property
    def db(self) -> DB:
        return self._toolkit.db

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The tools in OpenAI's format, as tau2 gives them to the agent."""
        return copy.deepcopy(self._schemas)

    def tool_names(self) -> list[str]:
        return list(self._signatures)

    def is_write(self, name: str) -> bool:
        return self._types.get(name) == ToolType.WRITE

    def db_hash(self) -> str:
        """sha256 of the database's canonical JSON. Episodes ask for it on every user turn, so it is kept
        until a write tool or an initialization runs: only those change the database."""
        if self._db_hash is None:
            self._db_hash = canonical_hash(self.db)
        return self._db_hash

    def call(self, name: str, arguments: str | dict[str, Any]) -> CallResult:
        signature = self._signatures.get(name)
        if signature is None:
            return CallResult(f"Error: Tool '{name}' not found.", "invalid")
        arguments = decode_arguments(name, arguments)
        if isinstance(arguments, CallResult):
            return arguments
        arguments, error = signature.check(arguments)
        if error is not None:
            return CallResult(f"Error: {error}", "invalid")
        if self.is_write(name):  # even a failing write may have changed something before it raised
            self._db_hash = None
        try:
            result = getattr(self._toolkit, name)(**arguments)
        except Exception as exc:  # noqa: BLE001 - tau2 answers whatever a tool raises as "Error: <message>"
            return CallResult(f"Error: {exc}", "tool_error")
        return CallResult(to_json_str(result), "ok")

    def run_initialization(self, initialization_data: dict[str, Any] | None,
                           initialization_actions: list[dict[str, Any]] | None) -> None:
        """tau2's ``set_state`` without a message history: deep-merge ``agent_data`` into the database, then
        run the environment function calls in order. Raises ValueError on anything that does not apply."""
        self._db_hash = None
        if initialization_data:
            if initialization_data.get("user_data") is not None:
                raise ValueError(f"the {self.domain} domain has no user database to update (user_data)")
            if (agent_data := initialization_data.get("agent_data")) is not None:
                self._merge_agent_data(agent_data)
        for index, action in enumerate(initialization_actions or []):
            name = action.get("func_name")
            described = f"initialization action {index} ({name})"
            if action.get("env_type", "assistant") != "assistant":
                raise ValueError(f"{described}: the {self.domain} domain has no {action.get('env_type')} tools")
            result = self.call(str(name), action.get("arguments") or {})
            if not result.ok:
                raise ValueError(f"{described} failed: {result.output}")

    def _merge_agent_data(self, agent_data: dict[str, Any]) -> None:
        """addict's recursive update, as tau2's ``update_db``: nested dicts merge, anything else replaces;
        the records it touched are then validated as tau2 validates the whole updated database."""
        if not isinstance(agent_data, dict):
            raise ValueError("initialization agent_data must be an object")
        for table, update in agent_data.items():
            shape = self._domain.tables.get(table)
            if shape is None:
                raise ValueError(f"initialization agent_data: unknown table '{table}'")
            if not isinstance(update, dict):
                raise ValueError(f"initialization agent_data: table '{table}' must be an object of records by id")
            _deep_merge(self.db[table], update)
            for key in update:
                try:
                    self.db[table][key] = shape.validate(self.db[table][key], shape.name)
                except RecordError as exc:
                    raise ValueError(f"initialization agent_data, table '{table}', key '{key}': {exc}") from None


def _deep_merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


# --- loading ----------------------------------------------------------------------------------------------

def get_domain(name: str) -> Domain:
    module = _DOMAIN_MODULES.get(name)
    if module is None:
        raise ValueError(f"unknown tau2 domain '{name}' (known: {', '.join(_DOMAIN_MODULES)})")
    return importlib.import_module(module).DOMAIN


@lru_cache(maxsize=4)
def write_tools(domain: str) -> frozenset[str]:
    """The names of a domain's tools that change the database."""
    return frozenset(name for name, kind in get_domain(domain).toolkit.tool_types().items() if kind == ToolType.WRITE)


def validate_db(domain: Domain, data: Any, path: str) -> DB:
    """The database in the form tau2's ``model_dump()`` gives it; DatasetError names table, key and field."""
    if not isinstance(data, dict):
        raise DatasetError(path, "the database must be a JSON object of tables")
    for table in data:
        if table not in domain.tables:
            raise DatasetError(path, f"unexpected table '{table}' (the {domain.name} database has "
                                     f"{', '.join(domain.tables)})")
    db: DB = {}
    for table, record_shape in domain.tables.items():
        if table not in data:
            raise DatasetError(path, f"missing table '{table}'")
        records = data[table]
        if not isinstance(records, dict):
            raise DatasetError(path, f"table '{table}' must be an object of records by id")
        db[table] = {}
        for key, record in records.items():
            issues: list[Issue] = []
            db[table][key] = record_shape.check(record, (), issues)
            if issues:
                first = issues[0]
                where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first.loc).lstrip(".")
                raise DatasetError(path, f"table '{table}', key '{key}': {first.message} "
                                         f"(got {type(first.value).__name__} {first.value!r:.80})",
                                   field_name=where or None)
    return db


@lru_cache(maxsize=8)
def _snapshot(domain_name: str, db_path: str) -> bytes:
    """The validated database, pickled: unpickling is the cheapest deep copy of a 3 MB JSON tree."""
    try:
        with open(db_path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DatasetError(db_path, f"not valid JSON: {exc.msg}", row=exc.lineno) from None
    return pickle.dumps(validate_db(get_domain(domain_name), data, db_path), protocol=pickle.HIGHEST_PROTOCOL)


@lru_cache(maxsize=8)
def _snapshot_hash(domain_name: str, db_path: str) -> str:
    """The canonical hash of a snapshot, computed once: every fresh copy starts with it."""
    return canonical_hash(pickle.loads(_snapshot(domain_name, db_path)))


@lru_cache(maxsize=8)
def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def _schemas(domain_name: str) -> list[dict[str, Any]]:
    return json.loads((SCHEMA_DIR / f"{domain_name}.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _signatures(domain_name: str) -> dict[str, _ToolSignature]:
    domain = get_domain(domain_name)
    return {schema["function"]["name"]: _signature(f"{domain.toolkit.__name__}.{schema['function']['name']}", schema,
                                                   domain.argument_models)
            for schema in _schemas(domain_name)}


def load_environment(domain: str, db_path: str | Path | None = None,
                     policy_path: str | Path | None = None) -> Tau2Environment:
    """A fresh environment: its own copy of the database (the file is read and validated once per process)."""
    spec = get_domain(domain)
    db_file = str(Path(db_path or domain_dir(domain) / "db.json").resolve())
    policy_file = str(Path(policy_path or domain_dir(domain) / "policy.md").resolve())
    snapshot = _snapshot(domain, db_file)
    # Unpickling builds ~100k containers; pausing the cyclic collector meanwhile halves the copy time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        db = pickle.loads(snapshot)
    finally:
        if collecting:
            gc.enable()
    return Tau2Environment(spec, db, _read_text(policy_file), db_hash=_snapshot_hash(domain, db_file))
