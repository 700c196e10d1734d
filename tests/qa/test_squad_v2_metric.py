"""The local squad_v2 metric, on cases worked by hand."""

import importlib.util

import evaluate
import pytest

from qa_transfer.qa.scores import METRIC_DIR

spec = importlib.util.spec_from_file_location("squad_v2_metric", f"{METRIC_DIR}/squad_v2_metric.py")
metric_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(metric_module)


def answers(*texts):
    return {"text": list(texts), "answer_start": [0] * len(texts)}


def test_normalisation_drops_case_punctuation_articles_and_spaces():
    assert metric_module.normalize_answer("  The  Cat, sat!  ") == "cat sat"
    assert metric_module.normalize_answer("An apple a day") == "apple day"
    assert metric_module.exact_score("the Eiffel Tower.", "eiffel tower") == 1
    assert metric_module.exact_score("Theatre", "atre") == 0  # "the" inside a word is not an article


def test_f1_by_hand():
    # gold: [red, big, dog]; prediction: [big, dog, barked] -> overlap 2, P = 2/3, R = 2/3, F1 = 2/3
    assert metric_module.f1_score("the red big dog", "big dog barked") == pytest.approx(2 / 3)
    assert metric_module.f1_score("dog", "cat") == 0.0
    # empty against empty is a match, empty against anything else is not
    assert metric_module.f1_score("", "") == 1.0
    assert metric_module.f1_score("", "dog") == 0.0
    assert metric_module.f1_score("a", "") == 1.0  # "a" normalises to nothing


def test_scores_with_unanswerable_and_best_threshold():
    metric = evaluate.load(METRIC_DIR, keep_in_memory=True)
    refs = [
        {"id": "q1", "answers": answers("red big dog")},
        {"id": "q2", "answers": answers()},
        {"id": "q3", "answers": answers()},
        {"id": "q4", "answers": answers("Paris", "paris france")},
    ]
    preds = [
        {"id": "q1", "prediction_text": "big dog barked", "no_answer_probability": -3.0},  # F1 2/3, EM 0
        {"id": "q2", "prediction_text": "", "no_answer_probability": 2.0},  # correct abstention
        {"id": "q3", "prediction_text": "tower", "no_answer_probability": 0.5},  # should have abstained
        {"id": "q4", "prediction_text": "France", "no_answer_probability": -1.0},  # F1 max(0, 2/3) = 2/3 (P=1, R=1/2)
    ]
    result = metric.compute(predictions=preds, references=refs, no_answer_threshold=float("inf"))
    assert result["total"] == 4 and result["HasAns_total"] == 2 and result["NoAns_total"] == 2
    assert result["exact"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(100 * (2 / 3 + 1 + 0 + 2 / 3) / 4)
    assert result["HasAns_f1"] == pytest.approx(100 * (2 / 3))
    assert result["NoAns_exact"] == pytest.approx(50.0)
    # Sweep (exact): abstain on all = 2; answer q1 (-3): +0 -> 2; answer q4 (-1): +0 -> 2;
    # answer q3 (0.5): -1 -> 1; q2 (2.0) empty: 1. Best stays "abstain on all": just below -3.
    assert result["best_exact"] == pytest.approx(50.0)
    assert result["best_exact_thresh"] < -3.0
    # Sweep (F1): 2 -> q1 +2/3 -> q4 +2/3 = 3.333 (best, threshold -1.0) -> q3 -1 -> ...
    assert result["best_f1"] == pytest.approx(100 * (2 + 4 / 3) / 4)
    assert result["best_f1_thresh"] == pytest.approx(-1.0)
    assert list(result) == [
        "exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1",
        "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh",
    ]


def test_hub_default_threshold_counts_high_scores_as_abstentions():
    refs = [{"id": "a", "answers": answers()}, {"id": "b", "answers": answers("x y")}]
    preds = {"a": "wrong", "b": "x y"}
    scores = metric_module.squad_v2_scores(preds, refs and {r["id"]: r["answers"] for r in refs}, {"a": 1.5, "b": 0.2})
    assert scores["exact"] == 100.0  # 'a' abstains because 1.5 > 1.0


def test_squad_v1_data_gives_v1_keys_only():
    refs = {"a": answers("x"), "b": answers("y z")}
    scores = metric_module.squad_v2_scores({"a": "x", "b": "z"}, refs)
    assert set(scores) == {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total"}
    assert scores["exact"] == 50.0 and scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_missing_prediction_is_an_error():
    with pytest.raises(ValueError, match="no prediction"):
        metric_module.squad_v2_scores({}, {"a": answers("x")})
