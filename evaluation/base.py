"""The contract between the evaluation engine and a benchmark family.

A benchmark family (next-action prediction, tool use, ...) is one ``Evaluator`` subclass. The engine
(``evaluation.runner``), the Celery tasks and the CLI only talk to this interface, so a family never
needs to know about Django, Celery or the database, and the engine never needs to know what a family
measures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from datasets.base import Instance
from evaluation.client import EndpointClient

__all__ = ["OVERALL", "PROMPT_ROLE", "SIMULATOR_ERROR", "Evaluator", "Instance", "MetricSpec", "Outcome", "ResultRow", "ScoreValue"]


# The scores of a submission across its scenarios (a macro average), next to the per-scenario ones.
OVERALL = "overall"
# The error code of an outcome that failed because the benchmark's own endpoint (an LLM user simulator or
# judge) failed: an evaluation error, left out of the model's scores and reported apart.
SIMULATOR_ERROR = "simulator_error"
# A transcript entry that stands for the messages of a prompt: what the family needs, besides the instance,
# to rebuild them (``Evaluator.rebuild_prompt``) when a drill-down shows the transcript. A prompt that holds
# a whole page would otherwise be stored again with every scenario and trial of the instance.
PROMPT_ROLE = "prompt"


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a family's schema (HELM-style: the schema says how to read the number)."""

    name: str
    label: str
    higher_is_better: bool = True
    headline: bool = False
    # "ratio" values are in [0, 1] and displayed as percentages; "number" values are shown as they are.
    unit: str = "ratio"
    description: str = ""


@dataclass
class Outcome:
    """What one (instance, scenario, trial) evaluation produced."""

    prediction: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    # Empty when the endpoint answered; otherwise an ``EndpointError`` code such as "timeout".
    error_code: str = ""
    error: str = ""


@dataclass(frozen=True)
class ResultRow:
    """A persisted outcome handed back to ``Evaluator.score``."""

    instance: Instance
    trial: int
    prediction: dict[str, Any]
    metrics: dict[str, float]
    error_code: str = ""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is ~3x slower, and a leaderboard builds thousands
class ScoreValue:
    """One score of a submission: a scenario's (or ``OVERALL``) metric, its 95% interval and the number of
    items behind it. Families produce them; the pages read them back from the database."""

    scenario: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0

    def overlaps(self, other: "ScoreValue") -> bool | None:
        """Whether the two 95% intervals overlap; None when either has no interval."""
        if self.ci_low is None or self.ci_high is None or other.ci_low is None or other.ci_high is None:
            return None
        return self.ci_low <= other.ci_high and other.ci_low <= self.ci_high


class Evaluator(ABC):
    """A benchmark family. Subclasses set the class attributes and implement ``run`` and ``score``."""

    kind: ClassVar[str]
    scenarios: ClassVar[tuple[str, ...]]
    metrics: ClassVar[tuple[MetricSpec, ...]]
    prompt_version: ClassVar[str]
    default_trials: ClassVar[int] = 1
    # Episodes need an LLM user simulator set by the benchmark's maintainers; submissions are refused without one.
    needs_simulator: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    @classmethod
    def headline_metric(cls) -> MetricSpec:
        return next(m for m in cls.metrics if m.headline)

    @abstractmethod
    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        """Evaluate one instance under one scenario.

        May raise ``EndpointError`` when the endpoint keeps failing after the client's retries; the
        engine records that as a per-instance error (still counted in every denominator).
        """

    @abstractmethod
    def score(self, scenario: str, rows: list[ResultRow]) -> list[ScoreValue]:
        """Aggregate the results of one scenario (errored rows included) into scores. The rows' instances carry
        their references, not their inputs."""

    @classmethod
    def prepare(cls, instance_input: dict[str, Any]) -> dict[str, Any]:
        """What runs would otherwise derive from an instance's input again and again (a prompt's costly
        parts), computed once when the instance is imported and handed back as ``Instance.prepared``. It
        must depend on the input alone, and a run must give the same result without it."""
        return {}

    def needs_input(self, prepared: dict[str, Any]) -> bool:
        """Whether a run of an instance with these prepared parts reads its input; the worker leaves out the
        inputs that no run reads (a next-action input holds a page of 100K characters or more)."""
        return True

    def calls_per_item(self) -> int:
        """The most endpoint calls one item can make (sizes the worker's time limits)."""
        return 1

    @classmethod
    def rebuild_prompt(cls, instance_input: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
        """The messages that a ``PROMPT_ROLE`` entry of a stored transcript stands for (families that store
        such entries override this)."""
        return [{"role": "note", "content": "This prompt was not stored and cannot be rebuilt."}]

    def snapshot(self) -> dict[str, Any]:
        """The part of a submission's config snapshot that this family contributes (shown to users, so
        without secrets such as a user simulator's API key)."""
        return {"kind": self.kind, "prompt_version": self.prompt_version, **without_secrets(self.config)}


def without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_secrets(v) for k, v in value.items() if k != "api_key"}
    return value
