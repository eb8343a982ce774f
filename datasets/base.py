"""Plain data shapes that every benchmark loader returns and the service imports into its database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Instance:
    """One task instance, as loaders return it and as the evaluation engine sees it.

    ``scenario`` is empty when the instance is evaluated under every scenario of the benchmark (OPeRA's
    prompt ablations) and set when it belongs to one scenario only (tool-use intents). ``id`` is the
    database id once the service stores it; ``key`` is unique within its split.
    """

    key: str
    input: dict[str, Any]
    reference: dict[str, Any]
    scenario: str = ""
    id: int | str | None = None
    # What the family's evaluator derived from ``input`` at import (``Evaluator.prepare``); never exported.
    prepared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitData:
    name: str  # "train", "dev" or "test"
    instances: list[Instance]
    # Test references never leave the server: downloads and the API serve inputs only.
    labels_hidden: bool = False


@dataclass(frozen=True)
class ScenarioInfo:
    slug: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class BenchmarkData:
    slug: str
    name: str
    kind: str  # an ``evaluation.registry`` key: "next_action" or "tool_use"
    version: str
    license: str
    description: str
    scenarios: list[ScenarioInfo]
    splits: list[SplitData] = field(default_factory=list)  # empty where only the metadata matters (exports)
    citation: str = ""
    homepage: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class DatasetError(ValueError):
    """Bad dataset input. The message names the file, the row and the field."""

    def __init__(self, path: str, message: str, *, row: int | None = None, field_name: str | None = None):
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if field_name:
            where += f", field '{field_name}'"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.row = row
        self.field_name = field_name


def read_jsonl(path: str | Path, label: str | None = None) -> Iterator[tuple[int, Any]]:
    """The rows of a JSON Lines file with their line numbers (from 1); blank lines are skipped.

    A line that is not JSON raises ``DatasetError`` naming ``label`` (default: the path) and the line.
    """
    name = label or str(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(name, f"not valid JSON: {exc.msg}", row=number) from None
