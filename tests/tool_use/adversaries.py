"""Agents that try to game the Trajectory2Task benchmark instead of serving the customer.

None reads the database to check the policy or reads the policy's rules for the request at hand; each
exploits one way a benchmark can leak its answers. They serve as endpoints like the bundled baselines,
so the robustness test measures them exactly as it measures a submitted model.
"""

from __future__ import annotations

from typing import Any

from evaluation.baselines.tool_use import NaiveAgentPolicy
from evaluation.tool_use.verify import normalise

HEDGE = "I'm not sure I can do that, it may not be allowed. Shall I go ahead anyway?"
SHOTGUN = ("To help you I need a few details: which order, which item, which card, which account, which payment method "
           "and which transaction do you mean?")
STALL = "Let me look into that for you."
REFUSAL = "I'm sorry, but I cannot help with that request."


def _agent_texts(messages: list[dict[str, Any]]) -> list[int]:
    return [i for i, m in enumerate(messages) if m.get("role") == "assistant" and m.get("content") and not m.get("tool_calls")]


def _policy(messages: list[dict[str, Any]]) -> str:
    return str(messages[0].get("content") or "") if messages and messages[0].get("role") == "system" else ""


class ScenarioProber(NaiveAgentPolicy):
    """Sends one message that is both a hedge and a confirmation request, then reads the user's answer:
    insisting means "infeasible" (refuse, pasting the policy), a "yes" means "go ahead" (act at once)."""

    model_id = "adversary-scenario-prober"

    def reply(self, messages, tools, params):
        said = _agent_texts(messages)
        if not said:
            return {"content": HEDGE}
        answer = next((str(m.get("content") or "") for m in messages[said[0] + 1:] if m.get("role") == "user"), "")
        if not normalise(answer).startswith("yes"):
            return {"content": f"I'm sorry, I cannot do that. {_policy(messages)}"}
        return super().reply(messages, tools, params)


class PolicyPaster:
    """Refuses every request and pastes the whole policy, hoping the reason is somewhere in it."""

    model_id = "adversary-policy-paster"

    def reply(self, messages, tools, params):
        return {"content": f"I'm sorry, I cannot do that because of our policy:\n{_policy(messages)}"}


class ShotgunAsker(NaiveAgentPolicy):
    """Asks for every possible fact in one question, then acts at once on whatever it learnt."""

    model_id = "adversary-shotgun-asker"

    def reply(self, messages, tools, params):
        if not _agent_texts(messages):
            return {"content": SHOTGUN}
        return super().reply(messages, tools, params)


class StallThenAct(NaiveAgentPolicy):
    """Says something non-committal first (to spend the user's scripted events), then acts without asking."""

    model_id = "adversary-stall-then-act"

    def reply(self, messages, tools, params):
        if not _agent_texts(messages):
            return {"content": STALL}
        return super().reply(messages, tools, params)


class RefuseEverything:
    """Refuses every request, giving no reason."""

    model_id = "adversary-refuse-everything"

    def reply(self, messages, tools, params):
        return {"content": REFUSAL}


ADVERSARIES = (ScenarioProber(), PolicyPaster(), ShotgunAsker(), StallThenAct(), RefuseEverything())
