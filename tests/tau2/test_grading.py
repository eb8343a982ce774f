"""Grading tau2 trials: the components one by one, the judge over HTTP, and whole episodes against
stand-in user and agent endpoints on the real retail and airline data."""

from __future__ import annotations

import json

import pytest

from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient
from evaluation.tau2 import replay as replay_module
from evaluation.tau2.episode import run_trial
from evaluation.tau2.grading import (JUDGE_PROMPT_VERSION, Call, Grader, NLJudge, action_component, action_matches, agent_calls, communicate_component,
                                     pattern_matches, prohibited_component, required_component)
from evaluation.tau2.replay import read_domain_tasks
from evaluation.tau2.tasks import Action, ActionPattern, EvaluationCriteria, StructuredInstructions, Task, UserScenario
from evaluation.tau2.user import LLMConfig, LLMUserSimulator, SimulatorError
from tests.fault_server import completion
from tests.user_endpoint import GoldAgentPolicy, IdleAgentPolicy, NumberJudgePolicy, ScenarioUserPolicy

DATA = {"retail": "datasets/tau2/data/retail/tasks.json", "airline": "datasets/tau2/data/airline/tasks.json"}


def make_task(actions=(), communicate=None, nl=None, basis=None, forbidden=None, required=None, task_id="t1") -> Task:
    instructions = StructuredInstructions(domain="retail", reason_for_call="r", task_instructions="t",
                                          actions_should_not_taken=forbidden, actions_should_be_taken=required)
    return Task(id=task_id, user_scenario=UserScenario(instructions),
                evaluation_criteria=EvaluationCriteria(actions=list(actions), communicate_info=communicate, nl_assertions=nl, reward_basis=basis))


def assistant_call(name, arguments, call_id="c1"):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}]}


# -- the deterministic components ----------------------------------------------------------------------


def test_action_match_follows_compare_args_and_reads_json_inside_strings():
    gold = Action("a", "modify_user_address", {"user_id": "u1", "zip": "02134", "note": '{"a": 1, "b": [2]}'})
    assert action_matches(gold, Call("modify_user_address", {"user_id": "u1", "zip": "02134", "note": '{"b": [2],  "a": 1}'}))
    assert not action_matches(gold, Call("modify_user_address", {"user_id": "u1", "zip": "2134", "note": '{"a": 1, "b": [2]}'}))
    # compare_args None compares the call's own arguments: an extra argument in the call counts against it
    assert not action_matches(gold, Call("modify_user_address", {"user_id": "u1", "zip": "02134", "note": "{}", "x": 1}))
    only_user = Action("a", "modify_user_address", {"user_id": "u1", "zip": "02134"}, compare_args=["user_id"])
    assert action_matches(only_user, Call("modify_user_address", {"user_id": "u1", "zip": "99999"}))
    assert action_matches(Action("a", "calculate", {"expression": "1+1"}, compare_args=[]), Call("calculate", {"expression": "2"}))
    assert not action_matches(only_user, Call("get_user_details", {"user_id": "u1"}))


def test_agent_calls_skip_malformed_arguments_and_user_turns():
    transcript = [{"role": "system", "content": "p"}, {"role": "user", "content": "hi"},
                  assistant_call("get_user_details", {"user_id": "u1"}), {"role": "tool", "tool_call_id": "c1", "content": "{}"},
                  assistant_call("get_order_details", "{not json", "c2"), {"role": "tool", "tool_call_id": "c2", "content": "Error"},
                  assistant_call("calculate", "", "c3")]
    assert agent_calls(transcript) == [Call("get_user_details", {"user_id": "u1"}), Call("calculate", {})]


def test_communicate_uses_tau2_normalisation():
    task = make_task(communicate=["1234.5", "Gift Card", "315"])
    said = [{"role": "assistant", "content": "Refund of $1,234.50 to your gift card."}, {"role": "user", "content": "315?"}]
    component = communicate_component(task, said)
    assert component.value == 0.0 and component.details == ["the agent never said '315'"]
    said.append({"role": "assistant", "content": "The total is $3,15 after all"})  # commas are removed from the message
    assert communicate_component(task, said).value == 1.0
    assert communicate_component(make_task(communicate=["1,234.5"]), said).value == 0.0  # ... not from the expected text
    assert communicate_component(make_task(communicate=None), []).value == 1.0


def test_gold_action_missing_is_named():
    task = make_task(actions=[Action("0_1", "cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"})])
    component = action_component(task, [Call("cancel_pending_order", {"order_id": "#W1", "reason": "ordered by mistake"})])
    assert component.value == 0.0
    assert component.details == ['gold call 0_1 cancel_pending_order({"order_id": "#W1", "reason": "no longer needed"}) was not made (all arguments)']


def test_prohibited_and_required_actions_as_trajectory2task_grades_them():
    forbidden = [ActionPattern("cancel_pending_order", {"order_id": "#W1"}), ActionPattern("transfer_to_human_agents")]
    required = [ActionPattern("get_order_details", {"order_id": "#W1"})]
    task = make_task(forbidden=forbidden, required=required)
    calls = [Call("get_order_details", {"order_id": "#W1"}), Call("cancel_pending_order", {"order_id": "#W2", "reason": "x"})]
    assert prohibited_component(task, calls).value == 1.0  # another order: not the forbidden call
    assert required_component(task, calls).value == 1.0
    calls.append(Call("transfer_to_human_agents", {"summary": "s"}))
    component = prohibited_component(task, calls)
    assert component.value == 0.0
    assert component.details == ['forbidden call made: transfer_to_human_agents({"summary": "s"}) (forbidden: transfer_to_human_agents(any arguments))']
    missing = required_component(task, [Call("get_order_details", {"order_id": "#W9"})])
    assert missing.value == 0.0 and missing.details == ['required call not made: get_order_details({"order_id": "#W1"})']
    assert pattern_matches(ActionPattern("calculate"), Call("calculate", {"expression": "1"}))


# -- the judge -----------------------------------------------------------------------------------------


@pytest.fixture
def servers():
    started: list[PolicyServer] = []

    def start(*policies) -> PolicyServer:
        server = PolicyServer(*policies).start_background()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_judge_over_http_returns_a_verdict_per_assertion(servers):
    server = servers(NumberJudgePolicy())
    config = LLMConfig(base_url=server.base_url, model="number-judge", prompt_version="tau2-nl-judge-1")
    transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": "How many t-shirts are there?"},
                  {"role": "assistant", "content": "There are 10 t-shirt options."}]
    with EndpointClient(config.endpoint()) as client:
        verdicts = NLJudge(client, config).judge(transcript, ["Agent says there are 10 t-shirts.", "Agent offers 12 colours."])
    assert [(v.met, v.justification) for v in verdicts] == [(True, "every number was said"), (False, "the agent never said 12")]


def test_judge_endpoint_failure_and_unreadable_verdicts_are_simulator_errors(fault_server):
    down = fault_server(lambda n, request: (500, {}, b"{}"))
    config = LLMConfig(base_url=down.base_url, model="fault-model")
    with EndpointClient(config.endpoint(max_retries=1, backoff_base=0.01)) as client, pytest.raises(SimulatorError) as info:
        NLJudge(client, config).judge([], ["x"])
    assert info.value.role == "judge" and info.value.code == "server_error" and down.calls == 2
    chatty = fault_server(lambda n, request: (200, {}, completion("I think the agent did fine.")))
    config = LLMConfig(base_url=chatty.base_url, model="fault-model")
    with EndpointClient(config.endpoint()) as client, pytest.raises(SimulatorError, match="unusable verdict after 2 attempts"):
        NLJudge(client, config).judge([], ["x"])
    assert chatty.calls == 2


# -- the grader on real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tasks():
    return {domain: {t.id: t for t in read_domain_tasks(domain, path)} for domain, path in DATA.items()}


@pytest.fixture(scope="module")
def graders():
    server = PolicyServer(NumberJudgePolicy()).start_background()
    config = LLMConfig(base_url=server.base_url, model="number-judge", prompt_version=JUDGE_PROMPT_VERSION)
    client = EndpointClient(config.endpoint())
    yield {domain: Grader(domain, judge=NLJudge(client, config)) for domain in DATA}
    client.close()
    server.stop()


def gold_transcript(task):
    messages = [{"role": "system", "content": "policy"}, {"role": "user", "content": "hi"}]
    for i, action in enumerate(task.gold_actions):
        messages += [assistant_call(action.name, action.arguments, f"c{i}"), {"role": "tool", "tool_call_id": f"c{i}", "content": "..."}]
    return messages + [{"role": "assistant", "content": "Done. " + " ".join(task.evaluation_criteria.communicate_info or [])}]


def test_gold_final_database_passes_and_the_replay_is_cached(tasks, graders, monkeypatch):
    task = tasks["retail"]["0"]
    grader = Grader("retail")
    replay = replay_module.replay_gold("retail", task)
    runs = []
    monkeypatch.setattr("evaluation.tau2.grading.replay_gold", lambda *a: runs.append(a) or replay_module.replay_gold(*a))
    for _ in range(3):
        grade = grader.grade(task, gold_transcript(task), replay.env.db)
        assert grade.reward == 1.0 and grade.components["DB"].value == 1.0 and grade.components["ACTION"].value == 1.0
    assert len(runs) == 1


def test_wrong_final_database_names_the_records_that_differ(tasks, graders):
    task = tasks["retail"]["0"]  # an exchange of two items of order #W2378156
    grade = graders["retail"].grade(task, [], replay_module.load_environment("retail").db)
    assert grade.reward == 0.0 and grade.components["DB"].value == 0.0
    details = grade.components["DB"].details
    assert details and all(d.startswith("orders/#W2378156/") for d in details), details
    assert any(d.startswith("orders/#W2378156/status: \"delivered\" (expected \"exchange requested\")") for d in details), details
    assert grade.failures()[0].startswith("DB: orders/#W2378156/")


def test_an_episode_cut_short_gets_zero(tasks, graders):
    task = tasks["retail"]["0"]
    gold_db = replay_module.replay_gold("retail", task).env.db
    grade = graders["retail"].grade(task, gold_transcript(task), gold_db, stop_reason="max_steps")
    assert grade.reward == 0.0 and grade.components["DB"].value == 1.0
    assert "max_steps" in grade.note and "NL_ASSERTION" not in grade.components


def test_env_assertions_run_registered_functions(tasks, monkeypatch):
    from evaluation.tau2.tasks import EnvAssertion

    monkeypatch.setitem(replay_module.ENV_ASSERTIONS, "retail", {
        "assert_order_status": lambda db, order_id, status: db["orders"][order_id]["status"] == status})
    task = make_task(basis=["ENV_ASSERTION"])
    task.evaluation_criteria.env_assertions = [
        EnvAssertion("assistant", "assert_order_status", {"order_id": "#W2378156", "status": "cancelled"}, message="order not cancelled"),
        EnvAssertion("assistant", "assert_order_status", {"order_id": "#W2378156", "status": "cancelled"}, assert_value=False)]
    grade = Grader("retail").grade(task, [], replay_module.load_environment("retail").db)
    assert grade.components["ENV_ASSERTION"].details == ["order not cancelled"] and grade.reward == 0.0


# -- whole episodes over HTTP --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoints(tasks):
    """Per domain an agent server (a gold agent per task, and the idle agent), and the user server."""
    started = [PolicyServer(IdleAgentPolicy(), *(GoldAgentPolicy(domain, t) for t in by_id.values())).start_background()
               for domain, by_id in tasks.items()]
    user = PolicyServer(ScenarioUserPolicy(patience=3)).start_background()
    yield {domain: server.base_url for domain, server in zip(tasks, started)}, user.base_url
    for server in [*started, user]:
        server.stop()


def play(domain, task, agent_model, endpoints, grader):
    agent_urls, user_url = endpoints
    user_config = LLMConfig(base_url=user_url, model="scenario-user")
    with EndpointClient(LLMConfig(agent_urls[domain], agent_model).endpoint()) as agent, \
            EndpointClient(user_config.endpoint()) as user_client:
        user = LLMUserSimulator(user_client, task, user_config, max_turns=8)
        return run_trial(agent, grader, task, user, max_steps=60, max_errors=20)


# Every third retail task (among them 3, 39, 54 and 105, whose gold calls fail on purpose) and every
# second airline task: whole episodes cost a database copy and hashes each, so not all 164.
EPISODE_SAMPLE = {"retail": 3, "airline": 2}


@pytest.mark.parametrize("domain", list(DATA))
def test_gold_agent_episodes_pass(domain, tasks, graders, endpoints):
    sample = [t for t in tasks[domain].values() if int(t.id) % EPISODE_SAMPLE[domain] == 0]
    judged = passed = 0
    for task in sample:
        trial = play(domain, task, f"gold-{domain}-{task.id}", endpoints, graders[domain])
        components = trial.grade.components
        assert trial.episode.stop_reason == "user_stop", (task.id, trial.episode.messages[-1])
        assert (components["DB"].value, components["ACTION"].value, components["COMMUNICATE"].value) == (1.0, 1.0, 1.0), \
            (task.id, trial.grade.failures())
        if "NL_ASSERTION" in trial.grade.reward_basis and task.evaluation_criteria.nl_assertions:
            judged += 1  # the stand-in judge wants numbers the gold agent never says: not a pass criterion here
            assert len(components["NL_ASSERTION"].details) == len(task.evaluation_criteria.nl_assertions)
        else:
            assert trial.grade.reward == 1.0, (task.id, trial.grade.failures())
            passed += 1
    assert passed + judged == len(sample) and passed >= {"retail": 20, "airline": 0}[domain]


@pytest.mark.parametrize("domain", list(DATA))
def test_idle_agent_scores_zero_on_tasks_with_writes(domain, tasks, graders, endpoints):
    with_writes = [t for t in tasks[domain].values()
                   if replay_module.verify_tasks(domain, [t])[t.id]["changed"]][:6]
    assert len(with_writes) == 6
    for task in with_writes:
        trial = play(domain, task, "idle-agent", endpoints, graders[domain])
        assert trial.episode.stop_reason == "user_stop" and trial.episode.tool_calls == 0
        assert trial.grade.reward == 0.0 and trial.grade.components["DB"].value == 0.0
        assert trial.grade.components["DB"].details, task.id
