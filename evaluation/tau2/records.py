"""Record shapes of tau2-bench's data models, as plain-Python validators over JSON values.

tau2 keeps its databases as pydantic models and gives the agent ``model_dump()`` of them. Here the
database stays plain JSON, so each shape both checks a value and returns it in the form pydantic would
dump it: fields in declaration order, optional fields filled with their defaults, unknown keys of nested
records dropped, integers of float fields turned into floats. Validation problems are collected as
``Issue`` and can be rendered in pydantic's own error format, which is what tau2 shows the agent when one
of its models rejects an argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# tau2's error texts link pydantic's documentation of the version that produced them.
PYDANTIC_DOCS_VERSION = "2.14"

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    loc: Loc
    kind: str  # pydantic's error type: "missing", "string_type", "literal_error", ...
    message: str
    value: Any


class RecordError(ValueError):
    """A value does not fit a record shape; ``str()`` is pydantic's validation error text."""

    def __init__(self, title: str, issues: list[Issue]):
        self.title = title
        self.issues = issues
        super().__init__(format_issues(title, issues))


def _short_repr(value: Any) -> str:
    text = repr(value)
    # pydantic shortens long inputs to their first 25 and last 24 characters.
    return text if len(text) <= 50 else f"{text[:25]}...{text[-24:]}"


def format_issues(title: str, issues: list[Issue]) -> str:
    lines = [f"{len(issues)} validation error{'s' if len(issues) != 1 else ''} for {title}"]
    for issue in issues:
        lines.append(".".join(str(part) for part in issue.loc))
        lines.append(f"  {issue.message} [type={issue.kind}, input_value={_short_repr(issue.value)}, "
                     f"input_type={type(issue.value).__name__}]")
        lines.append(f"    For further information visit https://errors.pydantic.dev/{PYDANTIC_DOCS_VERSION}/v/{issue.kind}")
    return "\n".join(lines)


class Shape:
    """A value shape. ``check`` appends problems to ``issues`` and returns the dumped form of ``value``."""

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        raise NotImplementedError

    def validate(self, value: Any, title: str) -> Any:
        issues: list[Issue] = []
        result = self.check(value, (), issues)
        if issues:
            raise RecordError(title, issues)
        return result


class _Str(Shape):
    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, str):
            issues.append(Issue(loc, "string_type", "Input should be a valid string", value))
        return value


class _Int(Shape):
    """pydantic's lax integer: integral floats (and, with ``from_strings``, numeric strings) become ints."""

    def __init__(self, from_strings: bool):
        self.from_strings = from_strings

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                issues.append(Issue(loc, "finite_number", "Input should be a finite number", value))
            elif not value.is_integer():
                issues.append(Issue(loc, "int_from_float",
                                    "Input should be a valid integer, got a number with a fractional part", value))
            else:
                return int(value)
            return value
        if isinstance(value, str) and self.from_strings:
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                pass
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if number.is_integer():
                return int(number)
            issues.append(Issue(loc, "int_parsing", "Input should be a valid integer, unable to parse string as an integer", value))
            return value
        issues.append(Issue(loc, "int_type", "Input should be a valid integer", value))
        return value


class _Float(Shape):
    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        issues.append(Issue(loc, "float_type", "Input should be a valid number", value))
        return value


class _Bool(Shape):
    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, bool):
            issues.append(Issue(loc, "bool_type", "Input should be a valid boolean", value))
        return value


STR: Shape = _Str()
INT: Shape = _Int(from_strings=True)
# A tool argument: tau2 hands it over unconverted, so a string is never an integer there.
INT_ARGUMENT: Shape = _Int(from_strings=False)
FLOAT: Shape = _Float()
BOOL: Shape = _Bool()


class OneOf(Shape):
    """A ``Literal[...]`` of strings."""

    def __init__(self, *values: str):
        self.values = values
        quoted = [f"'{v}'" for v in values]
        self.expected = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, str) or value not in self.values:
            issues.append(Issue(loc, "literal_error", f"Input should be {self.expected}", value))
        return value


class Nullable(Shape):
    def __init__(self, inner: Shape):
        self.inner = inner

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        return None if value is None else self.inner.check(value, loc, issues)


class ListOf(Shape):
    def __init__(self, item: Shape):
        self.item = item

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, list):
            issues.append(Issue(loc, "list_type", "Input should be a valid list", value))
            return value
        return [self.item.check(item, (*loc, i), issues) for i, item in enumerate(value)]


class MapOf(Shape):
    def __init__(self, value: Shape, key: Shape = STR):
        self.key = key
        self.value = value

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, dict):
            issues.append(Issue(loc, "dict_type", "Input should be a valid dictionary", value))
            return value
        result = {}
        for key, item in value.items():
            self.key.check(key, (*loc, key, "[key]"), issues)
            result[key] = self.value.check(item, (*loc, key), issues)
        return result


_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    name: str
    shape: Shape
    default: Any = _REQUIRED


class Model(Shape):
    """A pydantic ``BaseModel``: named fields in declaration order, extra keys ignored."""

    def __init__(self, name: str, *fields: Field):
        self.name = name
        self.fields = fields

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, Mapping):
            issues.append(Issue(loc, "model_type", f"Input should be a valid dictionary or instance of {self.name}", value))
            return value
        result = {}
        for field in self.fields:
            if field.name in value:
                result[field.name] = field.shape.check(value[field.name], (*loc, field.name), issues)
            elif field.default is _REQUIRED:
                issues.append(Issue((*loc, field.name), "missing", "Field required", value))
            else:
                result[field.name] = field.default
        return result


class Tagged(Shape):
    """A union of models told apart by one literal field (``source`` of a payment method, ``status`` of a
    flight date), as pydantic's smart union resolves tau2's data."""

    def __init__(self, tag: str, variants: dict[str, Model]):
        self.tag = tag
        self.variants = variants
        self._tag_shape = OneOf(*variants)

    def check(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, Mapping):
            issues.append(Issue(loc, "model_type", "Input should be a valid dictionary", value))
            return value
        variant = self.variants.get(value.get(self.tag))
        if variant is None:
            self._tag_shape.check(value.get(self.tag), (*loc, self.tag), issues)
            return value
        return variant.check(value, loc, issues)
