"""Per-question SQuAD 2.0 scores and their bootstrap confidence intervals.

A matrix cell's EM and F1 are means over its questions; on a few hundred questions the mean moves by several points
with the draw of questions alone. `question_scores` scores each question by the official SQuAD 2.0 rules (the same
functions the squad_v2 metric uses: its mean over the questions is the metric's exact / f1), and
`bootstrap_interval` resamples the questions (seeded) for a percentile interval of the mean, so that a reader sees
how far two cells can be compared before comparing them.

    scores = question_scores(predictions, references)      # {id: QuestionScore}
    intervals = score_intervals(scores, resamples=1000, confidence=0.95, seed=42)
    # {"exact_ci": [low, high], "f1_ci": [...], "HasAns_exact_ci": [...], "HasAns_f1_ci": [...], ...}
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_transfer.dataset_columns import arrow_columns
from qa_transfer.results_io import read_json, write_json_atomic

METRIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "squad_v2_metric")
METRIC_FILE = os.path.join(METRIC_DIR, "squad_v2_metric.py")


def load_squad_v2_metric(**kwargs: Any) -> Any:
    """The local squad_v2 `evaluate` module (works offline). In memory, so parallel processes never share
    a cache file."""
    import evaluate

    return evaluate.load(METRIC_DIR, keep_in_memory=True, **kwargs)


def _official_rules():
    """The squad_v2 metric module's own scoring functions (loaded from its file: it is an `evaluate` module, not
    a package), so that per-question scores can never drift from the metric."""
    spec = importlib.util.spec_from_file_location("qa_transfer_squad_v2_rules", METRIC_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_RULES = _official_rules()


@dataclass(frozen=True)
class QuestionScore:
    exact: float  # 0 or 1
    f1: float  # in [0, 1]
    has_answer: bool


def question_scores(predictions: Mapping[str, str], references: Mapping[str, Mapping]) -> dict[str, QuestionScore]:
    """Each referenced question's exact match and F1 (best over its gold answers; "" is the gold answer of an
    unanswerable question) for predictions {id: text} that already apply the no-answer threshold. A question
    without a prediction is a ValueError."""
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction, e.g. id {missing[0]!r}")
    scores = {}
    for qid, answers in references.items():
        golds = _RULES.gold_texts(answers)
        prediction = predictions[qid]
        scores[qid] = QuestionScore(
            exact=float(max(_RULES.exact_score(gold, prediction) for gold in golds)),
            f1=float(max(_RULES.f1_score(gold, prediction) for gold in golds)),
            has_answer=golds != [""],
        )
    return scores


def bootstrap_interval(values: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` x 100 (scores in [0, 1] -> points): the
    `confidence` central share of the means of `resamples` seeded resamples with replacement. One value, or all
    equal, gives the degenerate interval [v, v]."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values to resample")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    # In chunks, so that a large set never holds resamples x questions indices at once.
    chunk = max(1, 2_000_000 // values.size)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = values[rng.integers(0, values.size, size=(stop - start, values.size))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    # Rounding in the percentile can put a bound a hair past the mean of a constant set.
    mean = values.mean()
    return float(100 * min(low, mean)), float(100 * max(high, mean))


def score_intervals(scores: Mapping[str, QuestionScore], resamples: int = 1000, confidence: float = 0.95,
                    seed: int = 0) -> dict[str, list[float]]:
    """Bootstrap intervals of exact and f1 over all questions, and of HasAns_* / NoAns_* over the answerable /
    unanswerable ones (where there are any), keyed like the metric's figures with `_ci`."""
    groups = {"": list(scores.values())}
    answerable = [score for score in scores.values() if score.has_answer]
    unanswerable = [score for score in scores.values() if not score.has_answer]
    if answerable:
        groups["HasAns_"] = answerable
    if unanswerable:
        groups["NoAns_"] = unanswerable
    intervals = {}
    for prefix, group in groups.items():
        for name in ("exact", "f1"):
            values = np.array([getattr(score, name) for score in group])
            intervals[f"{prefix}{name}_ci"] = list(bootstrap_interval(values, resamples, confidence, seed))
    return intervals


def gold_answers(examples: Any) -> dict[str, dict]:
    """Question id -> its gold answers ({"text": [...], "answer_start": [...]}) of a Dataset of flat records: the
    references `question_scores` takes."""
    columns = arrow_columns(examples, ["id", "answers"])
    return dict(zip(columns["id"].to_pylist(), columns["answers"].to_pylist()))


SCORES_FILE = "eval_scores.json"  # each question's exact match and F1 (0-1), and whether it has an answer


def attach_intervals(cell: dict[str, Any], cell_dir: str, examples: Any, resamples: int, confidence: float,
                     seed: int) -> bool:
    """Give a cross_eval.py `cell` (a Dataset's `examples` evaluated into `cell_dir`) its bootstrap intervals (`<metric>_ci` in its metrics) and write each question's scores
    (eval_scores.json), from the predictions stored in `cell_dir`; a cell that has them for these bootstrap
    settings is left alone. Returns whether the cell changed."""
    bootstrap = {"resamples": resamples, "confidence": confidence, "seed": seed}
    if cell.get("bootstrap") == bootstrap:
        return False
    predictions = read_json(os.path.join(cell_dir, "eval_predictions.json"))
    scores = question_scores(predictions, gold_answers(examples))
    write_json_atomic(os.path.join(cell_dir, SCORES_FILE), {
        qid: {"exact": score.exact, "f1": score.f1, "has_answer": score.has_answer} for qid, score in scores.items()
    }, indent=None)
    cell["metrics"].update(score_intervals(scores, resamples, confidence, seed))
    cell["bootstrap"] = bootstrap
    return True
