"""Register the bundled baselines as models on the leaderboard and submit them."""

from __future__ import annotations

from evaluation.baselines import BASELINES
from evaluation.baselines import smollm
from leaderboard.models import Benchmark, ModelEntry, Submission
from leaderboard.submissions import create_submission, rerun


def register(base_url: str, name: str, description: str) -> ModelEntry:
    entry, _ = ModelEntry.objects.update_or_create(
        name=name, is_baseline=True,
        defaults={"organisation": "Actboard baselines", "description": description, "base_url": base_url, "model_id": name},
    )
    return entry


# SmolLM2 runs on the CPU with an 8K context: short observations and short episodes keep one run within
# minutes. The settings land in the submissions' config snapshots, so the leaderboard shows them.
SMOLLM_EVALUATOR_CONFIG: dict[str, dict] = {
    "next_action": {"observation_chars": 6000, "structured_output": True},  # constrained to the reply schema
    "tool_use": {"max_turns": 4, "max_steps": 8},
}
SMOLLM_GENERATION_PARAMS = {"temperature": 0.0, "max_tokens": 160}


def submit_baselines(baseline_url: str, smollm_url: str | None = None, *, smollm_max_instances: int = 5, concurrency: int = 8) -> list[Submission]:
    """Queue one submission per (baseline, its benchmark); an earlier one is reused, or resumed if it stopped."""
    planned: list[tuple[ModelEntry, Benchmark, dict]] = []
    for spec in BASELINES.values():
        benchmark = Benchmark.objects.filter(slug=spec.benchmark).first()
        if benchmark:
            planned.append((register(baseline_url, spec.name, spec.description), benchmark, {}))
    if smollm_url:
        entry = register(smollm_url, smollm.MODEL_ID, "SmolLM2-135M-Instruct (Q4_1 GGUF) served by llama.cpp on the CPU.")
        entry.generation_params = SMOLLM_GENERATION_PARAMS
        entry.save(update_fields=["generation_params"])
        # A 135M model on a CPU is slow: evaluate a fixed prefix of each scenario, marked as partial.
        planned += [
            (entry, b, {"max_instances": smollm_max_instances, "concurrency": 1, "trials": 1,
                        "evaluator_config": SMOLLM_EVALUATOR_CONFIG.get(b.kind, {})})
            # A family whose user simulator is not set yet cannot evaluate anything: skip it, not the whole run.
            for b in Benchmark.objects.all() if not b.missing_simulator_message
        ]
    submissions = []
    for entry, benchmark, options in planned:
        latest = Submission.objects.filter(model=entry, benchmark=benchmark).order_by("-created_at").first()
        if latest is None:
            latest = create_submission(model=entry, benchmark=benchmark, concurrency=options.pop("concurrency", concurrency), **options)
        elif latest.status in (Submission.Status.FAILED, Submission.Status.CANCELLED):
            rerun(latest)  # resume where an earlier run stopped; its finished results are kept
            latest.refresh_from_db()
        submissions.append(latest)
    return submissions
