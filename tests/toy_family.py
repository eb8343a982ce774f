"""A tiny benchmark family ("add two numbers") that exercises the engine without a real dataset."""

from __future__ import annotations

import re

import numpy as np

from datasets.base import BenchmarkData, ScenarioInfo, SplitData
from evaluation.base import Evaluator, Instance, MetricSpec, Outcome, ResultRow, ScoreValue
from evaluation.client import EndpointClient


class ToyEvaluator(Evaluator):
    kind = "toy"
    scenarios = ("plain", "shouted")
    metrics = (
        MetricSpec("accuracy", "Accuracy", headline=True),
        MetricSpec("error_rate", "Error rate", higher_is_better=False),
    )
    prompt_version = "toy-1"

    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        question = f"What is {instance.input['a']} + {instance.input['b']}?"
        messages = [{"role": "user", "content": question.upper() if scenario == "shouted" else question}]
        result = client.chat(messages)
        match = re.search(r"-?\d+", result.content)
        answer = int(match.group()) if match else None
        correct = answer == instance.reference["sum"]
        return Outcome(
            prediction={"answer": answer}, metrics={"accuracy": float(correct)}, transcript=messages + [result.message],
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens, latency_ms=result.latency_ms,
        )

    def score(self, scenario: str, rows: list[ResultRow]) -> list[ScoreValue]:
        correct = np.array([r.metrics.get("accuracy", 0.0) if not r.error_code else 0.0 for r in rows])
        errors = np.array([1.0 if r.error_code else 0.0 for r in rows])
        return [
            ScoreValue(scenario, "accuracy", float(correct.mean()) if len(rows) else 0.0, n=len(rows)),
            ScoreValue(scenario, "error_rate", float(errors.mean()) if len(rows) else 0.0, n=len(rows)),
        ]


class AddingPolicy:
    """Answers the toy questions right, except every ``wrong_every``-th one."""

    model_id = "adder"

    def __init__(self, wrong_every: int = 0):
        self.wrong_every = wrong_every
        self.calls = 0

    def reply(self, messages, tools, params):
        self.calls += 1
        a, b = map(int, re.findall(r"-?\d+", messages[-1]["content"])[:2])
        total = a + b + (1 if self.wrong_every and self.calls % self.wrong_every == 0 else 0)
        return {"content": f"The answer is {total}."}


def toy_benchmark(n: int = 10) -> BenchmarkData:
    records = [Instance(key=f"q{i}", input={"a": i, "b": 2 * i}, reference={"sum": 3 * i}) for i in range(n)]
    return BenchmarkData(
        slug="toy", name="Toy addition", kind="toy", version="1", license="CC0", description="Adds numbers.",
        scenarios=[ScenarioInfo("plain", "Plain"), ScenarioInfo("shouted", "Shouted")],
        splits=[SplitData("train", records[: n // 2]), SplitData("test", records, labels_hidden=True)],
    )
