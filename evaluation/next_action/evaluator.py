"""The OPeRA next-action family: one chat call per instance, parsed and scored per DESIGN §1.1."""

from __future__ import annotations

from typing import Any, ClassVar

from evaluation.base import Evaluator, Instance, MetricSpec, Outcome, ResultRow, ScoreValue
from evaluation.client import EndpointClient
from evaluation.metrics.next_action import is_exact_match, next_action_scores
from evaluation.next_action.parser import invalid, parse_reply
from evaluation.next_action.prompt import DEFAULT_OBSERVATION_CHARS, PROMPT_VERSION, SCENARIOS, build_messages


class NextActionEvaluator(Evaluator):
    """Config: ``observation_chars`` (page budget in the prompt), ``bootstrap`` and ``seed`` (for CIs),
    ``params`` (generation parameters sent with every call, e.g. ``{"temperature": 0}``)."""

    kind: ClassVar[str] = "next_action"
    scenarios: ClassVar[tuple[str, ...]] = SCENARIOS
    prompt_version: ClassVar[str] = PROMPT_VERSION
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("exact_match", "Exact match", headline=True,
                   description="Same action type; for a click the same target name; for an input the same name and text."),
        MetricSpec("action_type_macro_f1", "Action-type macro-F1",
                   description="Macro-F1 over click / input / terminate; unparsable replies count as wrong."),
        MetricSpec("action_type_weighted_f1", "Action-type weighted-F1",
                   description="Support-weighted F1 over click / input / terminate (always clicking already scores about 0.8)."),
        MetricSpec("click_type_weighted_f1", "Click-type weighted-F1",
                   description="Support-weighted F1 over the 13 click types, on steps whose reference is a click."),
        MetricSpec("outcome_accuracy", "Session outcome accuracy",
                   description="Purchase / no purchase per session, from the predicted clicks vs the reference clicks."),
        MetricSpec("outcome_weighted_f1", "Session outcome weighted-F1", description="Weighted F1 of the session outcome."),
        MetricSpec("parse_error_rate", "Invalid replies", higher_is_better=False,
                   description="Share of steps whose reply did not parse or whose call failed."),
    )

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__({"observation_chars": DEFAULT_OBSERVATION_CHARS, **(config or {})})

    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        messages = build_messages(instance.input, scenario, observation_chars=int(self.config["observation_chars"]))
        result = client.chat(messages, **dict(self.config.get("params") or {}))  # EndpointError propagates
        prediction = parse_reply(result.content)
        return Outcome(
            prediction=prediction,
            metrics={"exact_match": float(is_exact_match(prediction, instance.reference)),
                     "parse_error": float(bool(prediction["parse_error"]))},
            transcript=[*messages, {"role": "assistant", "content": result.content}],
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_ms,
        )

    def score(self, scenario: str, rows: list[ResultRow]) -> list[ScoreValue]:
        trials = len({row.trial for row in rows})
        predictions, references = [], []
        for row in rows:
            reference = dict(row.instance.reference)
            if trials > 1:  # each trial replays every session: its outcome is judged per trial
                reference["session_id"] = f"{row.trial}:{reference['session_id']}"
            references.append(reference)
            # A failed call is a wrong prediction, never a dropped one.
            predictions.append(invalid(f"endpoint error: {row.error_code}") if row.error_code else row.prediction)
        scores = next_action_scores(predictions, references, bootstrap=int(self.config.get("bootstrap", 1000)),
                                    seed=int(self.config.get("seed", 0)))
        return [ScoreValue(scenario, spec.name, scores[spec.name]["value"], scores[spec.name]["ci_low"],
                           scores[spec.name]["ci_high"], scores[spec.name]["n"]) for spec in self.metrics]
