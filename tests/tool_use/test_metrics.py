import pytest

from evaluation.metrics.tool_use import pass_hat_k, pass_hat_k_ci, protocol_counts


def test_single_task_by_hand():
    trials = {"a": [True, True, False, False]}
    assert pass_hat_k(trials, 1) == 0.5
    assert pass_hat_k(trials, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_hat_k(trials, 3) == 0.0


def test_tau_bench_like_four_trials():
    # Five tasks with 4, 3, 2, 1 and 0 successes out of 4 trials.
    trials = {f"t{c}": [True] * c + [False] * (4 - c) for c in range(5)}
    assert pass_hat_k(trials, 1) == pytest.approx((1 + 0.75 + 0.5 + 0.25) / 5)
    assert pass_hat_k(trials, 2) == pytest.approx((1 + 3 / 6 + 1 / 6) / 5)
    assert pass_hat_k(trials, 3) == pytest.approx((1 + 1 / 4) / 5)
    assert pass_hat_k(trials, 4) == pytest.approx(1 / 5)
    values = [pass_hat_k(trials, k) for k in range(1, 5)]
    assert values == sorted(values, reverse=True)


def test_reliability_profile_like_tau_bench_airline():
    # 50 tasks; pass^1 0.42 falling to 0.20 at k=4, the shape tau-bench reports for gpt-4o on airline.
    trials = {}
    for i, c in enumerate([4] * 10 + [3] * 1 + [2] * 3 + [1] * 6 + [0] * 30):
        trials[f"t{i}"] = [True] * c + [False] * (4 - c)
    assert pass_hat_k(trials, 1) == pytest.approx((40 + 3 + 6 + 6) / 200)
    assert pass_hat_k(trials, 4) == pytest.approx(0.20)
    assert pass_hat_k(trials, 2) == pytest.approx((10 + 0.5 + 3 / 6) / 50)


def test_too_few_trials_raise():
    with pytest.raises(ValueError, match="fewer than k=3"):
        pass_hat_k({"a": [True, True, True], "b": [True, False]}, 3)
    with pytest.raises(ValueError):
        pass_hat_k({}, 1)
    with pytest.raises(ValueError):
        pass_hat_k({"a": [True]}, 0)


def test_bootstrap_interval():
    trials = {f"t{i}": [i % 3 != 0, i % 2 == 0] for i in range(40)}
    low, high = pass_hat_k_ci(trials, 1)
    assert low <= pass_hat_k(trials, 1) <= high
    assert (low, high) == pass_hat_k_ci(trials, 1)
    assert pass_hat_k_ci({"a": [True, True]}, 2) == (1.0, 1.0)


def _write(name="cancel_pending_order"):
    return {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": name, "arguments": "{}"}}]}


def test_protocol_counts_confirmed_writes_and_asking_first():
    is_write = {"cancel_pending_order"}.__contains__
    careful = [{"role": "user", "content": "Cancel my order."}, {"role": "assistant", "content": "Which order?"},
               {"role": "user", "content": "#W1"}, {"role": "assistant", "content": "Shall I cancel #W1?"},
               {"role": "user", "content": "Yes, please go ahead."}, _write(), _write("get_order_details")]
    assert protocol_counts(careful, is_write) == {"writes": 1.0, "confirmed_writes": 1.0, "acted": 1.0, "asked_first": 1.0}
    hasty = [{"role": "user", "content": "Cancel my order."}, _write(), {"role": "assistant", "content": "Done. Anything else?"},
             {"role": "user", "content": "Yes, please go ahead."}, _write()]
    # A yes to a question that asked for no confirmation confirms nothing; one yes confirms one step.
    assert protocol_counts(hasty, is_write) == {"writes": 2.0, "confirmed_writes": 0.0, "acted": 1.0, "asked_first": 0.0}
