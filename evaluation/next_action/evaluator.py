"""The OPeRA next-action family: one chat call per instance, parsed and scored per DESIGN §1.1."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, ClassVar

from evaluation.base import PROMPT_ROLE, Evaluator, Instance, MetricSpec, Outcome, ResultRow, ScoreValue
from evaluation.client import ChatResult, EndpointClient, EndpointError
from evaluation.metrics.next_action import is_exact_match, next_action_scores
from evaluation.next_action.parser import invalid, parse_reply
from evaluation.next_action.prompt import (DEFAULT_OBSERVATION_CHARS, PROMPT_VERSION, SCENARIOS, build_messages,
                                           prepare_input, prepared_for, reply_format)

# Prompt parts built at run time (an instance imported before they were stored, or a budget other than the
# default), kept for the other scenarios and trials of the same instance, which the worker runs side by side.
PREPARED_CACHE_SIZE = 64


def rejects_response_format(err: EndpointError) -> bool:
    """A 400 that names the structured-output request: the endpoint does not support it."""
    text = err.message.lower()
    return err.code == "bad_request" and any(word in text for word in ("response_format", "json_schema", "response format"))


class _PendingParts:
    """An instance's prompt parts, or the promise of them while the first caller builds them."""

    __slots__ = ("parts", "ready")

    def __init__(self) -> None:
        self.parts: dict[str, Any] | None = None
        self.ready = threading.Event()


class NextActionEvaluator(Evaluator):
    """Config: ``observation_chars`` (page budget in the prompt), ``bootstrap`` and ``seed`` (for CIs),
    ``params`` (generation parameters sent with every call, e.g. ``{"temperature": 0}``),
    ``structured_output`` (ask for the reply's JSON schema as ``response_format``, which OpenAI, vLLM and
    llama.cpp servers enforce; an endpoint that rejects it with a 400 is asked in plain prompting from
    then on, by this evaluator, without retrying every item)."""

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
        super().__init__({"observation_chars": DEFAULT_OBSERVATION_CHARS, "structured_output": False, **(config or {})})
        self._structured = bool(self.config["structured_output"])
        self._lock = threading.Lock()
        self._built: OrderedDict[str, _PendingParts] = OrderedDict()

    @classmethod
    def prepare(cls, instance_input: dict[str, Any]) -> dict[str, Any]:
        return prepare_input(instance_input, DEFAULT_OBSERVATION_CHARS)

    def needs_input(self, prepared: dict[str, Any]) -> bool:
        return not prepared_for(prepared, int(self.config["observation_chars"]))

    def _prompt_parts(self, instance: Instance) -> dict[str, Any]:
        """The instance's prompt parts at this config's budget: the ones stored at import where they serve it,
        else built once per instance.

        The scenarios of an instance run side by side, so they ask for its parts at the same moment: the
        first builds them and the others wait for that result instead of shrinking the page again.
        """
        budget = int(self.config["observation_chars"])
        if prepared_for(instance.prepared, budget):
            return instance.prepared
        with self._lock:
            entry = self._built.get(instance.key)
            if entry is None:
                entry = self._built[instance.key] = _PendingParts()
                if len(self._built) > PREPARED_CACHE_SIZE:
                    self._built.popitem(last=False)
                mine = True
            else:
                self._built.move_to_end(instance.key)
                mine = False
        if mine:
            try:
                entry.parts = prepare_input(instance.input, budget)
            finally:
                entry.ready.set()
        entry.ready.wait()
        if entry.parts is None:  # the first caller failed: so does this one, on its own
            return prepare_input(instance.input, budget)
        return entry.parts

    def _chat(self, client: EndpointClient, messages: list[dict[str, Any]]) -> tuple[ChatResult, bool]:
        """The endpoint's reply, and whether it was asked for the reply's schema."""
        params = dict(self.config.get("params") or {})
        if self._structured:
            try:
                return client.chat(messages, **params, response_format=reply_format()), True
            except EndpointError as err:
                if not rejects_response_format(err):
                    raise
                with self._lock:
                    self._structured = False  # remembered: the other items go straight to plain prompting
        return client.chat(messages, **params), False  # EndpointError propagates

    def run(self, client: EndpointClient, instance: Instance, scenario: str, trial: int) -> Outcome:
        messages = build_messages(instance.input, scenario, observation_chars=int(self.config["observation_chars"]),
                                  prepared=self._prompt_parts(instance))
        result, structured = self._chat(client, messages)
        prediction = parse_reply(result.content)
        if self.config["structured_output"]:
            prediction["structured_output"] = structured
        # The prompt is stored as what rebuilds it; the reply is stored as it came.
        return Outcome(
            prediction=prediction,
            metrics={"exact_match": float(is_exact_match(prediction, instance.reference)),
                     "parse_error": float(bool(prediction["parse_error"]))},
            transcript=[{"role": PROMPT_ROLE, "prompt_version": PROMPT_VERSION, "instance": instance.key, "scenario": scenario,
                         "observation_chars": int(self.config["observation_chars"])},
                        {"role": "assistant", "content": result.content}],
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_ms,
        )

    @classmethod
    def rebuild_prompt(cls, instance_input: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
        if entry.get("prompt_version") != PROMPT_VERSION:
            return [{"role": "note", "content": f"This prompt was built by prompt version {entry.get('prompt_version')}; "
                     f"this server builds version {PROMPT_VERSION} and cannot show it."}]
        return build_messages(instance_input, entry["scenario"], observation_chars=int(entry["observation_chars"]))

    def score(self, scenario: str, rows: list[ResultRow]) -> list[ScoreValue]:
        trials = len({row.trial for row in rows})
        predictions, references, sessions = [], [], []
        for row in rows:
            reference = dict(row.instance.reference)
            sessions.append(reference["session_id"])
            if trials > 1:  # each trial replays every session: its outcome is judged per trial
                reference["session_id"] = f"{row.trial}:{reference['session_id']}"
            references.append(reference)
            # A failed call is a wrong prediction, never a dropped one.
            predictions.append(invalid(f"endpoint error: {row.error_code}") if row.error_code else row.prediction)
        # The bootstrap resamples sessions with all their trials: trials are not independent sessions.
        scores = next_action_scores(predictions, references, bootstrap=int(self.config.get("bootstrap", 1000)),
                                    seed=int(self.config.get("seed", 0)), clusters=sessions if trials > 1 else None)
        return [ScoreValue(scenario, spec.name, scores[spec.name]["value"], scores[spec.name]["ci_low"],
                           scores[spec.name]["ci_high"], scores[spec.name]["n"]) for spec in self.metrics]
