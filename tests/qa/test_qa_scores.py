"""qa_scores: per-question SQuAD 2.0 scores whose mean is the metric's, and bootstrap intervals that hold the point
estimate, repeat under the same seed, narrow with more questions and survive degenerate cells."""

import numpy as np
import pytest

from qa_transfer.qa.scores import (
    QuestionScore,
    bootstrap_interval,
    load_squad_v2_metric,
    question_scores,
    score_intervals,
)

REFERENCES = {
    "a": {"text": ["the Rhine river", "Rhine"], "answer_start": [0, 4]},
    "b": {"text": ["1815"], "answer_start": [10]},
    "c": {"text": [], "answer_start": []},  # unanswerable
    "d": {"text": ["Warsaw"], "answer_start": [3]},
    "e": {"text": [], "answer_start": []},
}
PREDICTIONS = {"a": "Rhine", "b": "in 1815 and 1816", "c": "", "d": "", "e": "a guess"}


def test_scores_follow_the_official_rules():
    scores = question_scores(PREDICTIONS, REFERENCES)
    assert scores["a"] == QuestionScore(1.0, 1.0, True)  # best over gold answers, articles ignored
    assert scores["b"].exact == 0.0 and scores["b"].f1 == pytest.approx(2 * (1 / 4) * 1 / (1 / 4 + 1))
    assert scores["c"] == QuestionScore(1.0, 1.0, False)  # abstained on an unanswerable question
    assert scores["d"] == QuestionScore(0.0, 0.0, True)
    assert scores["e"] == QuestionScore(0.0, 0.0, False)


def test_the_mean_of_the_scores_is_the_metric():
    metric = load_squad_v2_metric()
    expected = metric.compute(
        predictions=[{"id": q, "prediction_text": t, "no_answer_probability": 0.0} for q, t in PREDICTIONS.items()],
        references=[{"id": q, "answers": a} for q, a in REFERENCES.items()], no_answer_threshold=float("inf"))
    scores = question_scores(PREDICTIONS, REFERENCES).values()
    assert 100 * np.mean([s.f1 for s in scores]) == pytest.approx(expected["f1"])
    assert 100 * np.mean([s.exact for s in scores]) == pytest.approx(expected["exact"])
    assert 100 * np.mean([s.f1 for s in scores if s.has_answer]) == pytest.approx(expected["HasAns_f1"])


def test_a_question_without_prediction_is_an_error():
    with pytest.raises(ValueError, match="1 questions have no prediction, e.g. id 'e'"):
        question_scores({q: t for q, t in PREDICTIONS.items() if q != "e"}, REFERENCES)


def test_the_interval_holds_the_estimate_and_repeats_under_its_seed():
    values = np.random.default_rng(0).random(300)
    low, high = bootstrap_interval(values, resamples=1000, seed=7)
    assert low < 100 * values.mean() < high
    assert bootstrap_interval(values, resamples=1000, seed=7) == (low, high)
    assert bootstrap_interval(values, resamples=1000, seed=8) != (low, high)


def test_the_interval_narrows_as_questions_are_added():
    rng = np.random.default_rng(1)
    widths = []
    for size in (50, 500, 5000):
        low, high = bootstrap_interval(rng.integers(0, 2, size).astype(float), resamples=1000, seed=0)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # about 1.96 standard errors either side: 2 x 1.96 x 100 x sqrt(0.25 / n)
    assert widths[2] == pytest.approx(2 * 1.96 * 100 * np.sqrt(0.25 / 5000), rel=0.15)


@pytest.mark.parametrize("values, expected", [([1.0], (100.0, 100.0)), ([0.0, 0.0, 0.0], (0.0, 0.0)),
                                              ([1.0] * 40, (100.0, 100.0))])
def test_degenerate_cells(values, expected):
    assert bootstrap_interval(np.array(values), resamples=1000, seed=0) == expected


def test_bad_input():
    with pytest.raises(ValueError, match="no values"):
        bootstrap_interval(np.array([]))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval(np.array([1.0]), confidence=1.5)


def test_score_intervals_by_part():
    intervals = score_intervals(question_scores(PREDICTIONS, REFERENCES), resamples=200, seed=0)
    assert set(intervals) == {f"{p}{m}_ci" for p in ("", "HasAns_", "NoAns_") for m in ("exact", "f1")}
    for low, high in intervals.values():
        assert 0 <= low <= high <= 100
    answerable_only = {q: a for q, a in REFERENCES.items() if a["text"]}
    assert not any(key.startswith("NoAns_") for key in
                   score_intervals(question_scores(PREDICTIONS, answerable_only), resamples=50))
