"""Trajectory2Task's LLM stages (explore, summarise, judge) against scripted models served over HTTP on loopback."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from datasets.tau2.bundle import read_task_folder
from datasets.tool_use import llm_stages as stages
from evaluation.baselines.server import PolicyServer, tool_call
from evaluation.client import EndpointClient, EndpointConfig, EndpointError
from evaluation.tau2.environment import load_environment
from evaluation.tau2.replay import read_domain_tasks, verify_tasks

ROOT = Path(__file__).resolve().parents[2]
N = 6
ALL_TOOLS = 16  # every retail tool: which writes the scripted explorer can make depends only on the orders


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


class ScriptedModel:
    """Plays all three stages on retail, told apart by their system prompts.

    Explorer: a lookup by a mistyped e-mail (a tool error), the right one, the user, their first order, then
    cancels it if pending or returns its first item if delivered; any other order, or none, ends without a write.
    Summariser: a scenario naming the gold writes; ``summary_mode`` "garbage" never answers JSON, "flaky"
    answers garbage first each time. Judge: 9 on every criterion for a cancellation, else 5.
    ``block_at`` makes the explorer's ``block_at``-th conversation wait until ``release`` is set.
    """

    model_id = "scripted"

    def __init__(self, summary_mode: str = "ok", block_at: int | None = None):
        self.summary_mode = summary_mode
        self.requests = 0
        self.conversations = 0
        self.block_at = block_at
        self.blocked, self.release = threading.Event(), threading.Event()

    def reply(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        system = messages[0]["content"]
        if system.startswith("You explore"):
            return self._explore(system, messages, {t["function"]["name"] for t in tools or []})
        if system.startswith("You turn"):
            return {"content": self._summary(messages)}
        return {"content": self._verdict(messages[1]["content"])}

    def _explore(self, system: str, messages: list[dict[str, Any]], offered: set[str]) -> dict[str, Any]:
        user = json.loads(_between(system, "<user_info>\n", "\n</user_info>"))
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if not results:
            self.conversations += 1
            if self.conversations == self.block_at:
                self.blocked.set()
                self.release.wait(30)
        script = [("find_user_id_by_email", {"email": "x" + user["email"]}),
                  ("find_user_id_by_email", {"email": user["email"]}),
                  ("get_user_details", {"user_id": user["user_id"]})]
        script += [("get_order_details", {"order_id": order_id}) for order_id in user["orders"][:1]]
        if len(results) < len(script):
            name, arguments = script[len(results)]
            return {"content": f"Next: {name}.", "tool_calls": [tool_call(name, arguments, f"call_{len(results)}")]}
        if len(results) == len(script) and user["orders"] and not results[-1].startswith("Error"):
            order = json.loads(results[-1])
            if order["status"] == "pending" and "cancel_pending_order" in offered:
                return {"content": "Cancel it.", "tool_calls": [tool_call(
                    "cancel_pending_order", {"order_id": order["order_id"], "reason": "no longer needed"}, "call_write")]}
            if order["status"] == "delivered" and "return_delivered_order_items" in offered:
                return {"content": "Return one item.", "tool_calls": [tool_call("return_delivered_order_items", {
                    "order_id": order["order_id"], "item_ids": [order["items"][0]["item_id"]],
                    "payment_method_id": order["payment_history"][0]["payment_method_id"]}, "call_write")]}
        return {"content": "Done."}

    def _summary(self, messages: list[dict[str, Any]]) -> str:
        if self.summary_mode == "garbage" or self.summary_mode == "flaky" and len(messages) == 2:
            return "Sure! Here is a task about the order."
        prompt = messages[1]["content"]
        user = json.loads(_between(prompt, "Customer record:\n", "\n\n"))
        gold = _between(prompt + "\n\n", "(its gold actions):\n", "\n\n")
        intent = _between(messages[0]["content"], "Intent type: ", ".")
        reply: dict[str, Any] = {
            "persona": "Brief and polite.", "reason_for_call": f"You want this done: {gold}",
            "known_info": f"Your email is {user['email']}.", "unknown_info": None,
            "task_instructions": "Confirm when the agent asks.", "communicate_info": [user["user_id"]]}
        if intent == "infeasible":
            reply["infeasible_reason"] = "Only pending orders can have their address changed."
            reply["actions_should_not_taken"] = [{"tool_name": "modify_user_address", "arguments": {"user_id": user["user_id"]}}]
        return "```json\n" + json.dumps(reply) + "\n```"

    @staticmethod
    def _verdict(prompt: str) -> str:
        gold = _between(prompt, "Gold write actions:\n", "\n\n")
        score = 9 if "cancel_pending_order" in gold else 5
        names = ("realism", "necessity", "correctness", "changing_scenario_relevance", "infeasibility_reasonability")
        return json.dumps({"evaluations": {n: {"score": score, "explanation": "scripted", "issues": []} for n in names},
                           "suggestions": []})


def serve(model: ScriptedModel) -> PolicyServer:
    return PolicyServer(model).start_background()


def client_for(server: PolicyServer) -> EndpointClient:
    return EndpointClient(EndpointConfig(server.base_url, "scripted", max_retries=0, timeout=30))


@pytest.fixture
def model():
    model = ScriptedModel()
    server = serve(model)
    with client_for(server) as client:
        yield model, client
    model.release.set()
    server.stop()


@pytest.fixture(scope="module")
def explored(tmp_path_factory) -> Path:
    """One exploration run of N trajectories, copied by the tests that build on it."""
    out = tmp_path_factory.mktemp("explored")
    server = serve(ScriptedModel())
    try:
        with client_for(server) as client:
            stages.explore(client, "retail", out, n=N, seed=3, tools=ALL_TOOLS, steps=8)
    finally:
        server.stop()
    return out


def copy_of(explored: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(explored, out)
    return out


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    text = json.dumps(records)
    for key in ("timestamp", "start_time", "end_time"):
        text = re.sub(rf'"{key}": "[^"]*"', f'"{key}": ""', text)
    return json.loads(text)


def test_explore_records_steps_tool_errors_and_keeps_trajectories_with_a_write(explored):
    kept, dropped = lines(explored / stages.TRAJECTORIES), lines(explored / "1_trajectories_dropped.jsonl")
    assert sorted(r["id"] for r in kept + dropped) == [f"traj_{i:04d}" for i in range(N)]
    assert kept and dropped  # seed 3 draws users with pending, delivered and other first orders
    users = load_environment("retail").db["users"]
    for trajectory in kept:
        assert trajectory["user_info"] == users[trajectory["user_info"]["user_id"]]
        first, *rest = trajectory["steps"]
        assert first["execution_status"] == "error" and first["error_message"] == "Error: User not found"
        assert first["tool_response"] == {"role": "tool", "content": "Error: User not found", "id": first["tool_call"]["id"],
                                          "requestor": "assistant", "error": True}
        assert [s["step_number"] for s in trajectory["steps"]] == [1, 2, 3, 4, 5]
        assert all(s["execution_status"] == "success" and s["llm_reasoning"] for s in rest)
        assert rest[-1]["tool_call"]["name"] in {"cancel_pending_order", "return_delivered_order_items"}
        assert trajectory["termination_reason"] == "agent_stopped"
        assert trajectory["statistics"]["success_rate"] == 0.8
    for record in dropped:
        assert record["reason"] == "no_successful_write"
        assert not stages.successful_writes("retail", record["trajectory"])
    report = json.loads((explored / "report_explore.json").read_text())
    assert report == {"stage": "explore", "domain": "retail", "output": str(explored / stages.TRAJECTORIES), "generated": N,
                      "kept": len(kept), "dropped": {"no_successful_write": len(dropped)}, "resumed": 0}


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_tool_sample_always_finds_the_user_and_can_write(domain):
    import random

    types = stages.tool_types(domain)
    for seed in range(30):
        tools = stages.sample_tools(domain, 4, random.Random(seed))
        assert len(tools) == len(set(tools)) == max(4, len(stages.LOOKUP_TOOLS[domain]) + 1)
        assert set(stages.LOOKUP_TOOLS[domain]) <= set(tools)
        assert any(types[name].value == "write" for name in tools)
        assert tools == stages.sample_tools(domain, 4, random.Random(seed))


def test_explore_summarise_judge_gives_tasks_that_read_back_and_replay_clean(explored, tmp_path, model):
    scripted, client = model
    out = copy_of(explored, tmp_path)
    trajectories = {t["id"]: t for t in lines(out / stages.TRAJECTORIES)}
    report = stages.summarise(client, "retail", out, intent="general")
    assert (report.total, report.kept, dict(report.dropped)) == (len(trajectories), len(trajectories), {})
    tasks = read_domain_tasks("retail", out / "2_tasks_general.json")
    assert [t.id for t in tasks] == [f"{trajectory_id}_general" for trajectory_id in trajectories]
    assert not any(entry["errors"] for entry in verify_tasks("retail", tasks).values())
    for task in tasks:
        writes = stages.successful_writes("retail", trajectories[task.extra["trajectory_id"]])
        assert [(a.name, a.arguments) for a in task.gold_actions] == writes
        assert task.extra == {"trajectory_id": task.id.removesuffix("_general"), "type": "general"}
        assert task.instructions.domain == "retail" and task.user_scenario.persona == "Brief and polite."

    judged = stages.judge(client, "retail", out, intent="general")
    reports = lines(out / "3_validity_report_general.jsonl")
    assert {r["trajectory_id"] for r in reports} == set(trajectories)
    assert all(set(r["evaluations"]) == {"realism", "necessity", "correctness"} for r in reports)
    cancels = [t.id for t in tasks if t.gold_actions[0].name == "cancel_pending_order"]
    assert 0 < len(cancels) < len(tasks)
    filtered = read_domain_tasks("retail", out / "4_tasks_general_filtered.json")
    assert [t.id for t in filtered] == cancels
    assert not any(entry["errors"] for entry in verify_tasks("retail", filtered).values())
    assert (judged.total, judged.kept, dict(judged.dropped)) == (len(tasks), len(cancels), {"overall_score below 7": len(tasks) - len(cancels)})

    requests = scripted.requests
    lenient = stages.judge(client, "retail", out, intent="general", threshold=5)
    assert scripted.requests == requests  # every task already judged: only the filter is redone
    assert lenient.kept == len(tasks) and lenient.resumed == len(tasks)
    assert len(read_domain_tasks("retail", out / "4_tasks_general_filtered.json")) == len(tasks)


def test_infeasible_tasks_carry_the_checked_forbidden_actions(explored, tmp_path, model):
    _, client = model
    out = copy_of(explored, tmp_path)
    report = stages.summarise(client, "retail", out, intent="infeasible")
    tasks = read_domain_tasks("retail", out / "2_tasks_infeasible.json")
    assert report.kept == len(tasks) > 0
    for task in tasks:
        assert [p.tool_name for p in task.prohibited_actions] == ["modify_user_address"]
        assert [(p.tool_name, p.arguments) for p in task.required_actions] == [(a.name, a.arguments) for a in task.gold_actions]
        assert task.reward_basis == ["DB", "COMMUNICATE", "PROHIBITED_ACTION", "REQUIRED_ACTION"]
    stages.judge(client, "retail", out, intent="infeasible")
    verdicts = lines(out / "3_validity_report_infeasible.jsonl")
    assert len(verdicts) == len(tasks)
    assert all(set(v["evaluations"]) == {"realism", "necessity", "correctness", "infeasibility_reasonability"} for v in verdicts)

    stages.summarise(client, "retail", out, intent="general")
    folder = tmp_path / "import"
    folder.mkdir()
    for intent in ("general", "infeasible"):
        shutil.copy(out / f"2_tasks_{intent}.json", folder / f"tasks_{intent}.json")
    task_set = read_task_folder(folder)  # the intents' files make one task set
    assert {scenario: len(tasks) for scenario, tasks in task_set.tasks.items()} == {"standard": len(tasks), "infeasible": len(tasks)}


@pytest.mark.parametrize("mode, kept", [("garbage", False), ("flaky", True)])
def test_an_unusable_reply_is_asked_again_then_recorded_as_a_failure(explored, tmp_path, mode, kept):
    scripted = ScriptedModel(summary_mode=mode)
    server = serve(scripted)
    out = copy_of(explored, tmp_path)
    try:
        with client_for(server) as client:
            report = stages.summarise(client, "retail", out, intent="ambiguous", attempts=3)
    finally:
        server.stop()
    count = len(lines(out / stages.TRAJECTORIES))
    if kept:
        assert (report.kept, scripted.requests) == (count, 2 * count)
        return
    assert (report.kept, dict(report.dropped), scripted.requests) == (0, {"bad_reply": count}, 3 * count)
    for failure in lines(out / "2_tasks_ambiguous_dropped.jsonl"):
        assert failure["detail"] == "the reply holds no JSON object" and failure["attempts"] == 3
        assert failure["reply"] == "Sure! Here is a task about the order."
    assert json.loads((out / "2_tasks_ambiguous.json").read_text()) == []


def test_summary_replies_are_checked_against_the_trajectory_and_the_tools(explored):
    trajectory = lines(explored / stages.TRAJECTORIES)[0]
    writes = stages.successful_writes("retail", trajectory)
    parse = stages._scenario_parser("retail", "infeasible", trajectory, writes)
    good = {"reason_for_call": "r", "known_info": "k", "task_instructions": "t", "infeasible_reason": "why",
            "actions_should_not_taken": [{"tool_name": "modify_user_address", "arguments": {}}]}
    assert parse(good)["actions_should_not_taken"] == [{"tool_name": "modify_user_address", "arguments": {}}]
    problems = {
        "communicate_info 'an invented 42.17' appears in no tool response": {"communicate_info": ["an invented 42.17"]},
        "unknown tool 'refund_everything'": {"actions_should_not_taken": [{"tool_name": "refund_everything"}]},
        "'get_user_details' does not change the database": {"actions_should_not_taken": [{"tool_name": "get_user_details"}]},
        "forbids one of the gold write actions": {"actions_should_not_taken": [{"tool_name": writes[0][0], "arguments": writes[0][1]}]},
        "'known_info' must be a non-empty string": {"known_info": " "},
    }
    for expected, change in problems.items():
        with pytest.raises(stages.ReplyError, match=expected):
            parse({**good, **change})


def test_a_task_whose_gold_replay_fails_is_dropped_with_the_reason(explored, tmp_path, model):
    _, client = model
    out = copy_of(explored, tmp_path)
    records = lines(out / stages.TRAJECTORIES)
    records[0]["steps"][-1]["tool_call"]["arguments"]["order_id"] = "#W0000000"  # a write that cannot have succeeded
    (out / stages.TRAJECTORIES).write_text("".join(json.dumps(r) + "\n" for r in records))
    report = stages.summarise(client, "retail", out, intent="general")
    assert dict(report.dropped) == {"replay_failed": 1} and report.kept == len(records) - 1
    [dropped] = lines(out / "2_tasks_general_dropped.jsonl")
    assert dropped["trajectory_id"] == records[0]["id"] and dropped["detail"].endswith("Order not found")


def test_a_killed_explorer_resumes_without_duplicates_to_the_same_result(explored, tmp_path):
    k = 3
    scripted = ScriptedModel(block_at=k + 1)
    server = serve(scripted)
    out = tmp_path / "killed"
    script = ("import sys; from datasets.tool_use.llm_stages import explore; from evaluation.client import *; "
              "explore(EndpointClient(EndpointConfig(sys.argv[1], 'scripted')), 'retail', sys.argv[2], "
              f"n={N}, seed=3, tools={ALL_TOOLS}, steps=8)")
    process = subprocess.Popen([sys.executable, "-c", script, server.base_url, str(out)], cwd=ROOT)
    try:
        assert scripted.blocked.wait(30), "the explorer never reached its fourth trajectory"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        scripted.release.set()
    try:
        written = lines(out / stages.TRAJECTORIES) + lines(out / "1_trajectories_dropped.jsonl")
        assert sorted(r["id"] for r in written) == [f"traj_{i:04d}" for i in range(k)]
        with client_for(server) as client:
            report = stages.explore(client, "retail", out, n=N, seed=3, tools=ALL_TOOLS, steps=8)
    finally:
        server.stop()
    assert report.resumed == k and report.total == N
    for name in (stages.TRAJECTORIES, "1_trajectories_dropped.jsonl"):
        assert without_times(lines(out / name)) == without_times(lines(explored / name))


def test_a_torn_last_line_is_made_again(explored, tmp_path, model):
    _, client = model
    out = copy_of(explored, tmp_path)
    stages.summarise(client, "retail", out, intent="changing")
    log = out / "2_tasks_changing.jsonl"
    whole = log.read_text()
    first, last = whole.rstrip("\n").rsplit("\n", 1)
    log.write_text(first + "\n" + last[: len(last) // 2])  # killed while writing the last record
    report = stages.summarise(client, "retail", out, intent="changing")
    assert log.read_text() == whole
    assert report.resumed == report.total - 1


# -- the command ----------------------------------------------------------------------------------------


@pytest.fixture
def command(settings, tmp_path):
    settings.ACTBOARD_ALLOW_PRIVATE_ENDPOINTS = True
    from django.core.management import call_command

    def run(*args: str) -> str:
        import io

        stdout = io.StringIO()
        call_command("llm_task_stages", *args, "--domain", "retail", "--out", str(tmp_path / "cmd"), stdout=stdout, verbosity=0)
        return stdout.getvalue()

    return run


def test_command_runs_the_stages_and_prints_their_reports(command, model):
    _, client = model
    base = ["--base-url", client.config.base_url, "--model", "scripted"]
    text = command("--stage", "explore", *base, "--n", "4", "--seed", "3", "--tools", str(ALL_TOOLS))
    assert text.startswith("explore retail: 4 generated, ")
    assert "dropped, no_successful_write:" in text
    text = command("--stage", "summarise", *base, "--intent", "standard")
    assert text.startswith("summarise retail: ") and "2_tasks_general.json" in text
    text = command("--stage", "judge", *base, "--threshold", "5")
    assert text.startswith("judge retail: ") and "4_tasks_general_filtered.json" in text


def test_command_errors_name_what_is_wrong(command, model, monkeypatch):
    from django.core.management import CommandError

    _, client = model
    base = ["--base-url", client.config.base_url, "--model", "scripted"]
    with pytest.raises(CommandError, match="run the explore stage first"):
        command("--stage", "summarise", *base)
    with pytest.raises(CommandError, match="cannot connect to http://127.0.0.1:9/v1"):
        command("--stage", "explore", "--base-url", "http://127.0.0.1:9/v1", "--model", "scripted")
    with pytest.raises(CommandError, match="does not list model 'gpt-x'"):
        command("--stage", "explore", "--base-url", client.config.base_url, "--model", "gpt-x")
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(CommandError, match="NO_SUCH_KEY is not set"):
        command("--stage", "explore", *base, "--api-key-env", "NO_SUCH_KEY")
    with pytest.raises(CommandError, match="unknown intent 'vague'"):
        command("--stage", "judge", *base, "--intent", "vague")


def test_an_endpoint_that_fails_mid_stage_stops_it_and_leaves_finished_records(explored, tmp_path):
    out = copy_of(explored, tmp_path)
    server = serve(ScriptedModel())
    client = client_for(server)
    server.stop()
    with pytest.raises(EndpointError):
        stages.summarise(client, "retail", out, intent="general")
    assert not (out / "2_tasks_general.jsonl").exists()
