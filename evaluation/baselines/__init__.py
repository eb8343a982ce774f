"""Baseline policies served as OpenAI-compatible endpoints (see ``server.py`` and ``__main__.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BaselineSpec:
    name: str  # also the model id the endpoint lists
    benchmark: str  # slug of the bundled benchmark it is meant for
    policy: str  # "module:factory"; the factory takes no arguments
    description: str


BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec("opera-majority", "opera", "evaluation.baselines.next_action:MajorityPolicy",
                     "Predicts the most frequent action of the train split for the current page type."),
        BaselineSpec("opera-retrieval", "opera", "evaluation.baselines.next_action:RetrievalPolicy",
                     "Nearest training step by TF-IDF over the page, the history and, when the prompt shows them, the persona "
                     "and the latest rationale; mapped onto an element of the current page."),
        BaselineSpec("t2t-reference-agent", "trajectory2task", "evaluation.baselines.tool_use:ReferenceAgentPolicy",
                     "Scripted agent that asks for missing facts and follows the policy: an upper-bound sanity check."),
        BaselineSpec("t2t-naive-agent", "trajectory2task", "evaluation.baselines.tool_use:NaiveAgentPolicy",
                     "Acts on its first guess and never asks."),
    )
}
