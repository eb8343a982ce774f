"""next_action_scores against hand-computed cases and against scikit-learn on random data."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import accuracy_score, f1_score

from evaluation.metrics.next_action import CLICK_TYPES, METRIC_NAMES, is_exact_match, next_action_scores


def ref(session: str, kind: str, name: str = "", text: str = "", click_type: str = "") -> dict:
    return {"session_id": session, "type": kind, "name": name, "text": text, "click_type": click_type}


def pred(kind: str, name: str = "", text: str = "", click_type: str = "", parse_error: str = "") -> dict:
    return {"type": kind, "name": name, "text": text, "click_type": click_type, "parse_error": parse_error}


def test_hand_computed_case() -> None:
    references = [
        ref("a", "click", "nav_bar.search_input", click_type="search"),
        ref("a", "input", "nav_bar.search_input", text="Bike  Light"),
        ref("a", "click", "buybox.purchase_form.add_to_cart", click_type="purchase"),
        ref("b", "click", "pagination.2", click_type="page_related"),
        ref("b", "terminate"),
    ]
    predictions = [
        pred("click", "nav_bar.search_input", click_type="search"),  # exact
        pred("input", "nav_bar.search_input", text=" bike light "),  # exact after collapse + casefold
        pred("click", "buybox.purchase_form.buy_now", click_type="purchase"),  # wrong name, right click type
        pred("invalid", parse_error="no JSON object in the reply"),
        pred("terminate", "ignored"),  # terminate matches on type alone
    ]
    scores = next_action_scores(predictions, references, bootstrap=0)
    assert scores["exact_match"] == {"value": pytest.approx(3 / 5), "ci_low": None, "ci_high": None, "n": 5}
    # click: T=3 P=2 TP=2 -> 0.8; input: 1.0; terminate: 1.0
    assert scores["action_type_macro_f1"]["value"] == pytest.approx((0.8 + 1 + 1) / 3)
    assert scores["action_type_weighted_f1"]["value"] == pytest.approx((3 * 0.8 + 1 + 1) / 5)
    # click refs: search (hit), purchase (hit), page_related (missed: invalid) -> (1 + 1 + 0) / 3
    assert scores["click_type_weighted_f1"]["value"] == pytest.approx(2 / 3)
    assert scores["click_type_weighted_f1"]["n"] == 3
    # session a: purchase / purchase; session b: no purchase / no purchase
    assert scores["outcome_accuracy"] == {"value": 1.0, "ci_low": None, "ci_high": None, "n": 2}
    assert scores["outcome_weighted_f1"]["value"] == 1.0
    assert scores["parse_error_rate"]["value"] == pytest.approx(1 / 5)


def test_parse_error_makes_a_prediction_invalid_even_with_a_type() -> None:
    references = [ref("a", "click", "x", click_type="other")]
    scores = next_action_scores([pred("click", "x", click_type="other", parse_error="truncated")], references, bootstrap=0)
    assert scores["exact_match"]["value"] == 0.0
    assert scores["parse_error_rate"]["value"] == 1.0
    assert not is_exact_match(pred("click", "x", click_type="other", parse_error="truncated"), references[0])


def test_outcome_counts_a_predicted_purchase_anywhere_in_the_session() -> None:
    references = [ref("a", "click", "x", click_type="other"), ref("a", "terminate"), ref("b", "terminate")]
    predictions = [pred("click", "y", click_type="purchase"), pred("terminate"), pred("terminate")]
    scores = next_action_scores(predictions, references, bootstrap=0)
    assert scores["outcome_accuracy"]["value"] == 0.5
    # reference: [no, no]; predicted: [yes, no] -> class "no": P=1 T=2 TP=1 -> 2/3; weighted by support 2
    assert scores["outcome_weighted_f1"]["value"] == pytest.approx(2 / 3)


def test_empty_and_mismatched_inputs() -> None:
    assert next_action_scores([], [])["exact_match"] == {"value": 0.0, "ci_low": None, "ci_high": None, "n": 0}
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        next_action_scores([pred("terminate")] * 2, [ref("a", "terminate")])
    with pytest.raises(ValueError, match="not one of"):
        next_action_scores([pred("terminate")], [ref("a", "scroll")])


def test_missing_keys_and_odd_values_take_the_slow_path() -> None:
    references = [ref("a", "click", "x", click_type="other"), ref("a", "input", "q", text="A")]
    predictions = [{"type": "click", "name": "x", "click_type": ["other"]}, {"type": "input", "name": "q", "text": 1}]
    scores = next_action_scores(predictions, references, bootstrap=0)
    assert scores["exact_match"]["value"] == 0.5
    assert scores["action_type_macro_f1"]["value"] == pytest.approx((1 + 1 + 0) / 3)


def random_case(n: int, sessions: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    names = [f"el.{i}" for i in range(6)]
    references, predictions = [], []
    for _ in range(n):
        kind = rng.choices(["click", "input", "terminate"], [0.8, 0.12, 0.08])[0]
        references.append(ref(f"s{rng.randrange(sessions)}", kind, rng.choice(names) if kind != "terminate" else "",
                              rng.choice(["red shoes", "Red  Shoes", "bike"]) if kind == "input" else "",
                              rng.choice(CLICK_TYPES) if kind == "click" else ""))
        guess = rng.choices(["click", "input", "terminate", "invalid"], [0.7, 0.1, 0.1, 0.1])[0]
        predictions.append(pred(guess, rng.choice(names), rng.choice(["red shoes", "bike"]),
                                rng.choice(CLICK_TYPES + ("made_up",)), "bad" if guess == "invalid" else ""))
    return predictions, references


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_random_data(seed: int) -> None:
    predictions, references = random_case(3000, 250, seed)
    scores = next_action_scores(predictions, references, bootstrap=0)
    y_true = [r["type"] for r in references]
    y_pred = [p["type"] for p in predictions]
    labels = ["click", "input", "terminate"]
    assert scores["action_type_macro_f1"]["value"] == pytest.approx(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert scores["action_type_weighted_f1"]["value"] == pytest.approx(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0))
    clicks = [i for i, r in enumerate(references) if r["type"] == "click"]
    ct_true = [references[i]["click_type"] for i in clicks]
    ct_pred = [predictions[i]["click_type"] if predictions[i]["type"] == "click" else "<none>" for i in clicks]
    assert scores["click_type_weighted_f1"]["value"] == pytest.approx(f1_score(ct_true, ct_pred, average="weighted", zero_division=0))
    assert scores["exact_match"]["value"] == pytest.approx(sum(map(is_exact_match, predictions, references)) / len(references))
    sessions = sorted({r["session_id"] for r in references})
    buys = lambda rows: {r["session_id"] for r in rows if r["type"] == "click" and r["click_type"] == "purchase"}  # noqa: E731
    with_session = [dict(p, session_id=r["session_id"]) for p, r in zip(predictions, references)]
    out_true = [s in buys(references) for s in sessions]
    out_pred = [s in buys(with_session) for s in sessions]
    assert scores["outcome_accuracy"]["value"] == pytest.approx(accuracy_score(out_true, out_pred))
    assert scores["outcome_weighted_f1"]["value"] == pytest.approx(f1_score(out_true, out_pred, average="weighted", zero_division=0))


def test_bootstrap_is_seeded_and_brackets_the_value() -> None:
    predictions, references = random_case(2000, 150, 7)
    first = next_action_scores(predictions, references, bootstrap=300, seed=3)
    assert first == next_action_scores(predictions, references, bootstrap=300, seed=3)
    assert first != next_action_scores(predictions, references, bootstrap=300, seed=4)
    for name in METRIC_NAMES:
        score = first[name]
        assert score["ci_low"] <= score["value"] <= score["ci_high"], name
        assert score["ci_high"] - score["ci_low"] < 0.3, name


def test_trials_of_a_session_are_resampled_together() -> None:
    # Five trials that replay the same 40 sessions are not 200 independent sessions: clustered by session,
    # the interval is about as wide as one trial's; treated as independent, it would shrink by about sqrt(5).
    predictions, references = random_case(400, 40, 11)
    one = next_action_scores(predictions, references, bootstrap=400, seed=1)["exact_match"]
    trials = 5
    replayed = [dict(r, session_id=f"{t}:{r['session_id']}") for t in range(trials) for r in references]
    clusters = [r["session_id"] for _ in range(trials) for r in references]
    clustered = next_action_scores(predictions * trials, replayed, bootstrap=400, seed=1, clusters=clusters)["exact_match"]
    naive = next_action_scores(predictions * trials, replayed, bootstrap=400, seed=1)["exact_match"]
    assert clustered["value"] == pytest.approx(one["value"]) and clustered["n"] == 400 * trials
    width = lambda s: s["ci_high"] - s["ci_low"]  # noqa: E731
    assert width(clustered) == pytest.approx(width(one), rel=0.25)
    assert width(naive) < 0.7 * width(clustered)
    with pytest.raises(ValueError, match="clusters"):
        next_action_scores(predictions, references, clusters=["a"])


def test_one_bootstrap_for_both_families() -> None:
    import numpy as np

    from evaluation.metrics.bootstrap import bootstrap_intervals, cluster_sums
    from evaluation.metrics.tool_use import pass_hat_k_ci

    values = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.5, 1.0]])
    mean = lambda sums: {"mean": sums[..., 0] / sums[..., 1]}  # noqa: E731
    low, high = bootstrap_intervals(values, mean, resamples=500, seed=0)["mean"]
    assert low <= 0.625 <= high
    # pass^k's interval is the same bootstrap of per-task values (tasks with all their trials).
    trials = {"a": [True, True], "b": [False, False], "c": [True, True], "d": [True, False]}
    assert pass_hat_k_ci(trials, 1, resamples=500, seed=0) == (low, high)
    assert bootstrap_intervals(values, mean, resamples=0) == {}
    grouped = cluster_sums(np.array([[1.0], [2.0], [3.0]]), ["x", "y", "x"])
    assert grouped.tolist() == [[4.0], [2.0]]
