"""Agents that try to game the Trajectory2Task benchmark instead of serving the customer.

None of them checks the policy against the records; each exploits one way a benchmark can leak its
answers. They are served as endpoints like the bundled baselines, so the robustness test and
``bench/t2t_robustness.py`` measure them exactly as they measure a submitted model.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from datasets.base import Instance
from datasets.tool_use.text import normalise
from evaluation.baselines.server import ChatPolicy, PolicyServer
from evaluation.baselines.tool_use import Conversation, NaiveAgentPolicy, Reply, ScriptedAgent, refusal, say
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.tool_use.evaluator import ToolUseEvaluator

HEDGE = "I'm not sure I can do that, it may not be allowed. Shall I go ahead anyway?"
SHOTGUN = ("To help you I need a few details: which order, item, reservation, flight, passenger, card or payment method "
           "do you mean?")
STALL = "Let me look into that for you."
REFUSAL = "I'm sorry, but I cannot help with that request."


def _policy_text(messages: list[dict[str, Any]]) -> str:
    return str(messages[0].get("content") or "") if messages and messages[0].get("role") == "system" else ""


def _said(messages: list[dict[str, Any]]) -> list[int]:
    """Indexes of the agent's messages to the user."""
    return [i for i, m in enumerate(messages) if m.get("role") == "assistant" and m.get("content") and not m.get("tool_calls")]


class ScenarioProber(NaiveAgentPolicy):
    """Sends one message that is both a hedge and a confirmation request, then reads the user's answer:
    a "yes" means "go ahead" (act at once), anything else "infeasible" (refuse, pasting the policy)."""

    model_id = "adversary-scenario-prober"

    def reply(self, messages, tools, params):
        said = _said(messages)
        if not said:
            return say(HEDGE)
        answer = next((str(m.get("content") or "") for m in messages[said[0] + 1:] if m.get("role") == "user"), "")
        if not normalise(answer).startswith("yes"):
            return say(f"I'm sorry, I cannot do that. {_policy_text(messages)}")
        return super().reply(messages, tools, params)


class PolicyPaster:
    """Refuses every request and pastes the whole policy, hoping the reason is somewhere in it."""

    model_id = "adversary-policy-paster"

    def reply(self, messages, tools, params):
        return say(f"I'm sorry, I cannot do that because of our policy:\n{_policy_text(messages)}")


class ShotgunAsker(NaiveAgentPolicy):
    """Asks for every possible fact in one question, then acts at once on whatever it learnt."""

    model_id = "adversary-shotgun-asker"

    def reply(self, messages, tools, params):
        return say(SHOTGUN) if not _said(messages) else super().reply(messages, tools, params)


class StallThenAct(NaiveAgentPolicy):
    """Says something non-committal first (to spend the user's scripted events), then acts without asking."""

    model_id = "adversary-stall-then-act"

    def reply(self, messages, tools, params):
        return say(STALL) if not _said(messages) else super().reply(messages, tools, params)


class RefuseEverything:
    """Refuses every request, giving no reason."""

    model_id = "adversary-refuse-everything"

    def reply(self, messages, tools, params):
        return say(REFUSAL)


class RuleGuesser(ScriptedAgent):
    """Refuses, with that rule's message, every write whose tool the policy restricts by exactly one rule,
    without reading a record; acts at once on the rest. Every airline write has one rule, so the rule's
    reason is always the right one there: only the facts behind it, which it never reads, tell it apart
    from an agent that checked."""

    model_id = "adversary-rule-guesser"

    def next_message(self, convo: Conversation) -> Reply:
        rules = convo.domain.policy.rules
        refusals, rest = [], []
        for part in convo.parts:
            restricting = [rule for rule in rules if rule.tool == part.tool]
            if len(restricting) == 1:
                refusals.append(refusal(part, restricting[0]))
            else:
                rest.append(part)
        convo.parts = rest
        acted = NaiveAgentPolicy().next_message(convo) if rest else say()
        return acted if acted.get("tool_calls") else say(acted["content"], *refusals)


ADVERSARIES = (ScenarioProber(), PolicyPaster(), ShotgunAsker(), StallThenAct(), RefuseEverything(), RuleGuesser())


# -- measuring them ------------------------------------------------------------------------------------


def sample(instances: Iterable[Instance], per_cell: int | None) -> list[Instance]:
    """The first ``per_cell`` tasks of each (domain, scenario) in split order (all of them for None)."""
    seen: dict[tuple[str, str], int] = defaultdict(int)
    out = []
    for instance in instances:
        cell = (instance.input["domain"], instance.scenario)
        if per_cell is None or seen[cell] < per_cell:
            seen[cell] += 1
            out.append(instance)
    return out


def served_results(policy: ChatPolicy, instances: list[Instance], evaluator: ToolUseEvaluator) -> dict[str, bool]:
    """One trial per task through a served endpoint, as for any submission: task key -> success."""
    server = PolicyServer(policy).start_background()
    client = EndpointClient(EndpointConfig(server.base_url, policy.model_id, max_retries=0))
    try:
        return {i.key: bool(evaluator.run(client, i, i.scenario, 0).prediction["success"]) for i in instances}
    finally:
        client.close()
        server.stop()
