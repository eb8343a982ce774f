"""Stand-in endpoints for tau2 episodes in tests, served over real HTTP by ``PolicyServer``.

- ``ScenarioUserPolicy`` plays the customer from the scenario in its system prompt (as
  ``evaluation.tau2.user`` writes it): it opens with the reason for the call, answers the agent's
  questions with the known info, says ``###STOP###`` once the agent reports that the request is done,
  and gives up (with the marker) after ``patience`` turns.
- ``GoldAgentPolicy`` is the agent that knows the answer: it makes the task's gold calls one by one, then
  tells the user that it is done (and says the task's ``communicate_info``).
- ``IdleAgentPolicy`` is the agent that does nothing but talk.
- ``NumberJudgePolicy`` is a deterministic NL-assertion judge: an expected outcome is met when every number
  it mentions was said by the agent.
"""

from __future__ import annotations

import json
import re
from typing import Any

from evaluation.baselines.server import tool_call
from evaluation.tau2.tasks import Task
from evaluation.tau2.user import STOP

SECTION = re.compile(r"^\t(Reason for call|Known info|Unknown info|Task instructions|Domain):\s*(.*)$")
DONE_WORDS = re.compile(r"\b(done|completed|all set|processed)\b", re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def scenario_sections(system_prompt: str) -> dict[str, str]:
    """The instruction sections of the ``<scenario>`` block, by heading."""
    block = system_prompt.split("<scenario>", 1)[-1].split("</scenario>", 1)[0]
    sections: dict[str, list[str]] = {}
    current = None
    for line in block.splitlines():
        if match := SECTION.match(line):
            current = match.group(1)
            sections[current] = [match.group(2)] if match.group(2) else []
        elif current and line.startswith("\t\t"):
            sections[current].append(line[2:])
    return {name: " ".join(lines).strip() for name, lines in sections.items()}


class ScenarioUserPolicy:
    model_id = "scenario-user"

    def __init__(self, patience: int = 6):
        self.patience = patience

    def reply(self, messages: list[dict[str, Any]], tools: Any, params: dict[str, Any]) -> dict[str, Any]:
        sections = scenario_sections(str(messages[0].get("content") or ""))
        reason = sections.get("Reason for call", "I need help.")
        own_turns = sum(m.get("role") == "assistant" for m in messages)
        agent = str(messages[-1].get("content") or "")
        if own_turns == 0:
            text = f"Hi. {reason}"
        elif DONE_WORDS.search(agent):
            text = f"Great, thank you. {STOP}"
        elif own_turns >= self.patience:
            text = f"This is going nowhere, goodbye. {STOP}"
        elif "?" in agent:
            text = f"Sure. {sections.get('Known info') or 'I do not know that.'}"
        else:
            text = f"To repeat: {reason}"
        return {"content": text}


class GoldAgentPolicy:
    """Serves as model ``gold-<domain>-<task id>``."""

    def __init__(self, domain: str, task: Task):
        self.task = task
        self.model_id = f"gold-{domain}-{task.id}"
        self.calls = [a for a in task.gold_actions if a.by_assistant]

    def reply(self, messages: list[dict[str, Any]], tools: Any, params: dict[str, Any]) -> dict[str, Any]:
        made = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
        if made < len(self.calls):
            action = self.calls[made]
            return {"content": None, "tool_calls": [tool_call(action.name, action.arguments, f"call_{made}")]}
        infos = self.task.evaluation_criteria.communicate_info if self.task.evaluation_criteria else None
        said = f" For your records: {'; '.join(infos)}." if infos else ""
        return {"content": f"Your request is done.{said}"}


class IdleAgentPolicy:
    model_id = "idle-agent"

    def reply(self, messages: list[dict[str, Any]], tools: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"content": "I understand. Could you tell me more?"}


class NumberJudgePolicy:
    model_id = "number-judge"

    def reply(self, messages: list[dict[str, Any]], tools: Any, params: dict[str, Any]) -> dict[str, Any]:
        prompt = str(messages[-1].get("content") or "")
        conversation, _, outcomes = prompt.partition("\n\nexpectedOutcomes:\n")
        agent_said = " ".join(line for line in conversation.splitlines() if line.startswith("assistant: "))
        results = []
        for outcome in json.loads(outcomes):
            missing = [n for n in NUMBER.findall(outcome) if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", agent_said)]
            results.append({"expectedOutcome": outcome, "metExpectation": not missing,
                            "reasoning": f"the agent never said {', '.join(missing)}" if missing else "every number was said"})
        return {"content": json.dumps({"results": results})}
