"""tau2 task files: every shipped file reads, round-trips, and bad input names file, task and field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from datasets.base import DatasetError
from evaluation.tau2.tasks import (ActionPattern, StructuredInstructions, TaskFileError, read_splits, read_tasks,
                                   task_to_json, write_tasks)

SHARED = Path("/work/shared/external")
TAU2_FILES = {domain: SHARED / "tau2" / domain / "tasks.json" for domain in ("retail", "airline")}
T2T_FILES = [SHARED / "t2t" / "examples" / domain / name for domain in ("retail", "airline")
             for name in ("2_tasks_general.json", "4_tasks_general_filtered.json")]
needs_originals = pytest.mark.skipif(not SHARED.exists(), reason="the original tau2 / Trajectory2Task files are not on this machine")

RETAIL_TOOLS = {"find_user_id_by_email", "find_user_id_by_name_zip", "get_order_details", "get_product_details",
                "get_user_details", "cancel_pending_order", "exchange_delivered_order_items", "return_delivered_order_items",
                "modify_pending_order_items", "modify_pending_order_address", "modify_pending_order_payment",
                "modify_user_address", "list_all_product_types", "calculate", "transfer_to_human_agents"}


def without_nulls(value):
    """JSON equality as task files mean it: a key holding null is the same as a missing key."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def task_json(**overrides):
    task = {
        "id": "7",
        "description": {"purpose": "test", "relevant_policies": None, "notes": None},
        "user_scenario": {"persona": None, "instructions": {
            "domain": "retail", "reason_for_call": "Cancel order #W1.", "known_info": "You are Ann.",
            "unknown_info": None, "task_instructions": "Be brief."}},
        "initial_state": None,
        "evaluation_criteria": {
            "actions": [{"action_id": "7_0", "name": "get_order_details", "arguments": {"order_id": "#W1"}, "info": None},
                        {"action_id": "7_1", "name": "cancel_pending_order", "arguments": {"order_id": "#W1", "reason": "no longer needed"}}],
            "communicate_info": [], "nl_assertions": None, "reward_basis": ["DB"]},
    }
    task.update(overrides)
    return task


def read_one(tasks, **kwargs):
    return read_tasks(io.StringIO(json.dumps(tasks)), **kwargs)


@needs_originals
@pytest.mark.parametrize("path", [*TAU2_FILES.values(), *T2T_FILES], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_files_round_trip(path, tmp_path):
    tasks = read_tasks(path)
    assert tasks
    out = tmp_path / "tasks.json"
    write_tasks(tasks, out)
    assert without_nulls(json.loads(out.read_text())) == without_nulls(json.loads(path.read_text()))
    assert read_tasks(out) == tasks


@needs_originals
def test_shipped_counts_and_splits():
    retail, airline = read_tasks(TAU2_FILES["retail"]), read_tasks(TAU2_FILES["airline"])
    assert (len(retail), len(airline)) == (114, 50)
    retail_splits = read_splits(TAU2_FILES["retail"].with_name("split_tasks.json"), retail)
    airline_splits = read_splits(TAU2_FILES["airline"].with_name("split_tasks.json"), airline)
    assert {k: len(v) for k, v in retail_splits.items()} == {"train": 74, "test": 40, "base": 114}
    assert {k: len(v) for k, v in airline_splits.items()} == {"train": 30, "test": 20, "base": 50}
    first = retail[0]
    assert first.instructions.known_info == "You are Yusuf Rossi in zip code 19122."
    assert [a.name for a in first.gold_actions][-1] == "exchange_delivered_order_items"
    assert all(a.by_assistant and a.requestor is None for a in first.gold_actions)
    assert first.reward_basis == ["DB", "NL_ASSERTION"]
    assert airline[0].description.purpose.startswith("Testing that agent refuses")
    assert "annotations" in airline[0].extra  # a key this reader does not model is kept


@needs_originals
def test_trajectory2task_records_without_id_use_their_trajectory_id(tmp_path):
    path = SHARED / "t2t" / "examples" / "retail" / "2_tasks_general.json"
    tasks = read_tasks(path, tool_names=RETAIL_TOOLS)
    assert tasks[0].id == "traj_0028" and tasks[0].id_from_trajectory_id
    assert "id" not in task_to_json(tasks[0])
    assert tasks[0].instructions.domain == "retail_explore"
    assert tasks[0].reward_basis == ["DB", "COMMUNICATE"]  # tau2's default where the file has none


def test_infeasible_fields_live_in_the_instructions_and_join_the_default_basis(tmp_path):
    raw = task_json()
    raw["user_scenario"]["instructions"].update({
        "infeasible_reason": "The order is already delivered.",
        "actions_should_not_taken": [{"tool_name": "cancel_pending_order", "arguments": {"order_id": "#W1"}}],
        "actions_should_be_taken": [{"tool_name": "get_order_details"}],
    })
    del raw["evaluation_criteria"]["reward_basis"]
    [task] = read_one([raw], tool_names=RETAIL_TOOLS)
    assert isinstance(task.instructions, StructuredInstructions)
    assert task.prohibited_actions == [ActionPattern("cancel_pending_order", {"order_id": "#W1"})]
    assert task.required_actions == [ActionPattern("get_order_details", {})]
    assert task.reward_basis == ["DB", "COMMUNICATE", "PROHIBITED_ACTION", "REQUIRED_ACTION"]
    out = tmp_path / "t.json"
    write_tasks([task], out)
    assert read_tasks(out) == [task]


def test_every_field_round_trips(tmp_path):
    raw = task_json(
        ticket="Customer wants a refund.",
        issues=[{"id": "1", "title": "kept verbatim"}],
        initial_state={
            "initialization_data": {"agent_data": {"orders": {}}, "user_data": None},
            "initialization_actions": [{"env_type": "assistant", "func_name": "get_order_details", "arguments": {"order_id": "#W1"}}],
            "message_history": [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Hello"}],
        },
    )
    raw["user_scenario"]["persona"] = "Terse."
    raw["evaluation_criteria"]["actions"][1].update({"requestor": "assistant", "compare_args": ["order_id"]})
    raw["evaluation_criteria"]["env_assertions"] = [
        {"env_type": "assistant", "func_name": "assert_cancelled", "arguments": {"order_id": "#W1"}, "assert_value": False, "message": "m"}]
    [task] = read_one([raw])
    assert task.ticket == "Customer wants a refund." and task.extra == {"issues": [{"id": "1", "title": "kept verbatim"}]}
    assert task.evaluation_criteria.env_assertions[0].expected is False
    assert task.evaluation_criteria.actions[1].compare_args == ["order_id"]
    assert task.initial_state.initialization_actions[0].func_name == "get_order_details"
    out = tmp_path / "t.json"
    write_tasks([task], out)
    assert without_nulls(json.loads(out.read_text())) == without_nulls([raw])
    assert read_tasks(out) == [task]


def test_free_text_instructions():
    [task] = read_one([task_json(user_scenario={"instructions": "You want to cancel order #W1."})])
    assert task.instructions is None and task.user_scenario.instructions == "You want to cancel order #W1."
    assert "Instructions:\n\tYou want to cancel order #W1." in str(task.user_scenario)


def mutate(change):
    raw = task_json()
    change(raw)
    return raw


@pytest.mark.parametrize("change, field, problem", [
    (lambda t: t["evaluation_criteria"]["actions"][1].update(name="cancel_order"),
     "evaluation_criteria.actions[1].name", "unknown tool 'cancel_order'"),
    (lambda t: t["evaluation_criteria"]["actions"][0].pop("action_id"), "evaluation_criteria.actions[0].action_id", "is missing"),
    (lambda t: t["evaluation_criteria"]["actions"][0].update(arguments="order_id=#W1"),
     "evaluation_criteria.actions[0].arguments", "must be an object, not a string"),
    (lambda t: t["evaluation_criteria"]["actions"][0].update(requestor="robot"), "evaluation_criteria.actions[0].requestor", "must be one of"),
    (lambda t: t["evaluation_criteria"].update(reward_basis=["DB", "VIBES"]), "evaluation_criteria.reward_basis[1]", "unknown reward type 'VIBES'"),
    (lambda t: t["evaluation_criteria"].update(communicate_info=[12]), "evaluation_criteria.communicate_info[0]", "must be a string"),
    (lambda t: t["user_scenario"]["instructions"].pop("reason_for_call"), "user_scenario.instructions.reason_for_call", "is missing"),
    (lambda t: t["user_scenario"].update(instructions=["x"]), "user_scenario.instructions", "must be a string or an object"),
    (lambda t: t.pop("user_scenario"), "user_scenario", "is missing"),
    (lambda t: t["user_scenario"]["instructions"].update(actions_should_not_taken=[{"tool_name": "delete_everything"}]),
     "user_scenario.instructions.actions_should_not_taken[0].tool_name", "unknown tool 'delete_everything'"),
    (lambda t: t["evaluation_criteria"].update(env_assertions=[{"env_type": "assistant", "func_name": "assert_x", "arguments": {}}]),
     "evaluation_criteria.env_assertions[0].func_name", "unsupported assertion function 'assert_x' (this domain has: none)"),
    (lambda t: t.update(initial_state={"message_history": [{"role": "narrator", "content": "x"}]}),
     "initial_state.message_history[0].role", "must be one of"),
    (lambda t: t.update(id=7), "id", "must be a string, not a number"),
])
def test_bad_task_names_file_task_and_field(tmp_path, change, field, problem):
    good = task_json(id="1")
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([good, mutate(change)]))
    with pytest.raises(TaskFileError) as info:
        read_tasks(path, tool_names=RETAIL_TOOLS, assertion_names=())
    message = str(info.value)
    assert message.startswith(f"{path}: task '7': {field}: "), message
    assert problem in message
    assert isinstance(info.value, DatasetError) and info.value.field_name == field and info.value.task_id == "7"


def test_unknown_tool_message_reads_as_documented(tmp_path):
    raw = task_json(id="12")
    raw["evaluation_criteria"]["actions"].append({"action_id": "12_2", "name": "cancel_order", "arguments": {}})
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([raw]))
    with pytest.raises(DatasetError, match=r"tasks\.json: task '12': evaluation_criteria\.actions\[2\]\.name: unknown tool 'cancel_order'$"):
        read_tasks(path, tool_names=RETAIL_TOOLS)


def test_duplicate_ids_and_whole_file_problems(tmp_path):
    with pytest.raises(TaskFileError, match=r"task '7': id: duplicate task id \(also task #0 of the file\)"):
        read_one([task_json(), task_json()])
    with pytest.raises(TaskFileError, match=r"task '#0': id: is missing"):
        read_one([{k: v for k, v in task_json().items() if k != "id"}])
    path = tmp_path / "tasks.json"
    path.write_text('[{"id": "1",')
    with pytest.raises(DatasetError, match=r"tasks\.json, row 1: not valid JSON"):
        read_tasks(path)
    path.write_text('{"id": "1"}')
    with pytest.raises(DatasetError, match="must hold a JSON list of tasks"):
        read_tasks(path)
    with pytest.raises(DatasetError, match="cannot be read"):
        read_tasks(tmp_path / "missing.json")


def test_splits_must_name_known_tasks(tmp_path):
    tasks = read_one([task_json(id="1"), task_json(id="2")])
    path = tmp_path / "split_tasks.json"
    path.write_text(json.dumps({"train": ["1"], "test": ["2", "9"]}))
    with pytest.raises(DatasetError, match=r"split_tasks\.json, field 'test': unknown task '9'"):
        read_splits(path, tasks)
    path.write_text(json.dumps({"train": ["1", "1"]}))
    with pytest.raises(DatasetError, match="field 'train': task '1' is listed twice"):
        read_splits(path, tasks)
    path.write_text(json.dumps({"train": "1"}))
    with pytest.raises(DatasetError, match="field 'train': must be a list of task ids"):
        read_splits(path)
    path.write_text(json.dumps({"train": ["1"], "test": ["2"]}))
    assert read_splits(path, tasks) == {"train": ["1"], "test": ["2"]}

