"""Benchmark families by kind. A family is one ``Evaluator`` subclass, imported on first use."""

from __future__ import annotations

from importlib import import_module

from evaluation.base import Evaluator

EVALUATORS: dict[str, str] = {
    "next_action": "evaluation.next_action.evaluator:NextActionEvaluator",
    "tool_use": "evaluation.tool_use.evaluator:ToolUseEvaluator",
    "tau2": "evaluation.tau2.evaluator:Tau2Evaluator",
}


def load_object(path: str) -> object:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def get_evaluator_class(kind: str) -> type[Evaluator]:
    try:
        path = EVALUATORS[kind]
    except KeyError:
        raise ValueError(f"unknown benchmark kind '{kind}' (known: {', '.join(sorted(EVALUATORS))})") from None
    return load_object(path)  # type: ignore[return-value]
