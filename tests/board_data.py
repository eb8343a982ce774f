"""Leaderboard data for page tests: two benchmark families shaped like the real ones, and builders that
write finished submissions (scores, per-instance results, transcripts) straight into the database."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from evaluation.base import Evaluator, MetricSpec
from evaluation.base import OVERALL
from leaderboard.models import Benchmark, InstanceResult, ModelEntry, Scenario, Score, Split, Submission, TaskInstance


class _ScoredElsewhere(Evaluator):
    """The pages only read a family's schema; these tests write scores and results directly."""

    prompt_version = "page-test-1"

    def run(self, client, instance, scenario, trial):
        raise NotImplementedError("page tests never call an endpoint")

    def score(self, scenario, rows):
        raise NotImplementedError("page tests write scores directly")


class NextActionLike(_ScoredElsewhere):
    kind = "next_action_like"
    scenarios = ("full", "no_persona", "no_rationale")
    metrics = (
        MetricSpec("exact_match", "Exact match", headline=True),
        MetricSpec("action_type_macro_f1", "Action-type macro-F1"),
        MetricSpec("action_type_weighted_f1", "Action-type weighted-F1"),
        MetricSpec("click_type_weighted_f1", "Click-type weighted-F1"),
        MetricSpec("outcome_accuracy", "Session outcome accuracy"),
        MetricSpec("parse_error_rate", "Parse errors", higher_is_better=False),
    )


class ToolUseLike(_ScoredElsewhere):
    kind = "tool_use_like"
    scenarios = ("standard", "ambiguous", "changing", "infeasible")
    default_trials = 4
    metrics = (
        MetricSpec("pass_1", "pass^1", headline=True),
        MetricSpec("pass_2", "pass^2"),
        MetricSpec("pass_3", "pass^3"),
        MetricSpec("pass_4", "pass^4"),
        MetricSpec("avg_turns", "Average turns", higher_is_better=False, unit="number"),
        MetricSpec("tool_error_rate", "Tool-error rate", higher_is_better=False),
    )


FAMILIES = {NextActionLike.kind: NextActionLike, ToolUseLike.kind: ToolUseLike}


def register_families(monkeypatch) -> None:
    from evaluation import registry

    for kind, cls in FAMILIES.items():
        monkeypatch.setitem(registry.EVALUATORS, kind, f"{__name__}:{cls.__name__}")


def make_benchmark(kind: str, slug: str, *, instances: int = 6) -> Benchmark:
    family = FAMILIES[kind]
    benchmark = Benchmark.objects.create(
        slug=slug, name=f"{slug.replace('-', ' ').title()}", kind=kind, version="1.0", license="CC-BY-4.0",
        description=f"A {kind} benchmark for page tests.", main_metric=family.headline_metric().name,
    )
    for position, scenario in enumerate(family.scenarios):
        Scenario.objects.create(benchmark=benchmark, slug=scenario, name=scenario.replace("_", " ").title(), position=position)
    Split.objects.create(benchmark=benchmark, name="train", version="1.0", sha256="a" * 64, instance_count=instances)
    test = Split.objects.create(benchmark=benchmark, name="test", version="1.0", sha256="b" * 64, labels_hidden=True, instance_count=instances)
    TaskInstance.objects.bulk_create(
        TaskInstance(split=test, key=f"{slug}-{i}", input={"i": i}, reference=_reference(kind, i)) for i in range(instances)
    )
    return benchmark


def _reference(kind: str, i: int) -> dict:
    if kind == NextActionLike.kind:
        return {"session_id": f"s{i // 3}", "type": "click", "name": f"product.link_{i}", "click_type": "product_link"}
    return {"gold_actions": [{"name": "cancel_order", "arguments": {"order_id": f"#W{i}"}}], "expected_outputs": []}


def _prediction(kind: str, i: int, correct: bool) -> dict:
    if kind == NextActionLike.kind:
        name = f"product.link_{i}" if correct else "nav_bar.search_input"
        return {"rationale": "The user wants to look at this item.", "action": {"type": "click", "name": name, "click_type": "product_link"}}
    return {"success": correct, "db_hash": "c0ffee" if correct else "bad"}


def _transcript(kind: str, i: int, correct: bool) -> list[dict]:
    if kind == NextActionLike.kind:
        return [
            {"role": "system", "content": "Predict the user's next action as JSON."},
            {"role": "user", "content": f"Persona: careful shopper.\nObservation: <a name=\"product.link_{i}\">Item</a>"},
            {"role": "assistant", "content": '{"action": {"type": "click"}}'},
        ]
    return [
        {"role": "system", "content": "Follow the shop policy."},
        {"role": "user", "content": f"Please cancel my order #W{i}."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": "cancel_order", "arguments": f'{{"order_id": "#W{i}"}}'}}]},
        {"role": "tool", "tool_call_id": f"call_{i}", "name": "cancel_order", "content": '{"status": "cancelled"}' if correct else "Error: order not found"},
        {"role": "assistant", "content": "Your order is cancelled." if correct else "Sorry, I could not do that."},
    ]


def add_submission(
    benchmark: Benchmark,
    model_name: str,
    headline: float,
    *,
    organisation: str = "Example Lab",
    half_width: float = 0.05,
    model: ModelEntry | None = None,
    scenarios: list[str] | None = None,
    results: bool = True,
    correct: list[bool] | None = None,
    error_every: int = 0,
    **flags,
) -> Submission:
    """A finished submission whose every metric is ``headline`` shifted a little, with a CI of +- half_width."""
    family = FAMILIES[benchmark.kind]
    model = model or ModelEntry.objects.create(
        name=model_name, organisation=organisation, base_url="https://api.example.com/v1", model_id=model_name[:200],
        price_prompt_per_mtok=1.0, price_completion_per_mtok=4.0, is_baseline=flags.get("is_baseline", False),
    )
    scenarios = scenarios or list(family.scenarios)
    split = benchmark.splits.get(name="test")
    now = timezone.now()
    submission = Submission.objects.create(
        model=model, benchmark=benchmark, split=split, scenarios=scenarios, trials=1, status=Submission.Status.FINISHED,
        config={"endpoint_host": "api.example.com", "model_id": model.model_id, "generation_params": {"temperature": 0},
                "prompt_version": family.prompt_version,
                "dataset": {"benchmark": benchmark.slug, "benchmark_version": benchmark.version, "split": "test",
                            "split_version": split.version, "sha256": split.sha256}},
        progress_done=split.instance_count * len(scenarios), progress_total=split.instance_count * len(scenarios),
        created_at=now - timedelta(minutes=5), started_at=now - timedelta(minutes=4), heartbeat_at=now,
        scoring_started_at=now, finished_at=now, prompt_tokens=120_000, completion_tokens=8_000,
        latency_mean_ms=850.0, latency_p95_ms=2100.0, **flags,
    )
    scores = []
    for scenario in [*scenarios, OVERALL]:
        for offset, metric in enumerate(family.metrics):
            value = headline if metric.headline else max(0.0, headline - 0.05 * offset)
            if metric.unit == "number":
                value = 3.0 + offset
            scores.append(Score(submission=submission, scenario=scenario, metric=metric.name, value=value,
                                ci_low=value - half_width, ci_high=value + half_width, n=split.instance_count))
    Score.objects.bulk_create(scores)
    if results:
        instances = list(split.instances.order_by("id"))
        rows = []
        for scenario in scenarios:
            for i, instance in enumerate(instances):
                ok = correct[i] if correct is not None else i % 2 == 0
                error = bool(error_every) and i % error_every == error_every - 1
                rows.append(InstanceResult(
                    submission=submission, instance=instance, scenario=scenario, trial=0, correct=ok and not error,
                    prediction={} if error else _prediction(benchmark.kind, i, ok), transcript=[] if error else _transcript(benchmark.kind, i, ok),
                    metrics={family.headline_metric().name: float(ok)}, prompt_tokens=1000, completion_tokens=50, latency_ms=800.0,
                    error_code="timeout" if error else "", error_message=f"Endpoint timed out after 120 s (instance {i})" if error else "",
                ))
        InstanceResult.objects.bulk_create(rows)
    Benchmark.touch_boards([benchmark.id])  # as worker.scoring.finalize does once the scores are in
    return submission
