"""Per-question SQuAD 2.0 scores, the two scoring protocols of a matrix cell, and bootstrap confidence intervals.

A matrix cell's EM and F1 are means over its questions; on a few hundred questions the mean moves by several points
with the draw of questions alone. `question_scores` scores each question by the official SQuAD 2.0 rules (the same
functions the squad_v2 metric uses: its mean over the questions is the metric's exact / f1), and
`bootstrap_interval` resamples the questions (seeded) for a percentile interval of the mean, so that a reader sees
how far two cells can be compared before comparing them.

    scores = question_scores(predictions, references)      # {id: QuestionScore}
    intervals = score_intervals(scores, resamples=1000, confidence=0.95, seed=42)
    # {"exact_ci": [low, high], "f1_ci": [...], "HasAns_exact_ci": [...], "HasAns_f1_ci": [...], ...}

A cell is scored under two protocols from the same predictions (`attach_intervals`): the SQuAD 2.0 rules (no answer
where the null score wins) and answer-always (each question's best non-empty span, `answer_always_*` figures).
`rank_correlation_interval` gives a Spearman correlation of many cells with reference values an interval by
resampling every cell's questions at once.
"""

from __future__ import annotations

import importlib.util
import math
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


# Each question's exact match and F1 (0-1) under both protocols, and whether it has an answer.
SCORES_FILE = "eval_scores.json"
ANSWER_ALWAYS = "answer_always_"  # the prefix of the figures scored by each question's best non-empty span
ANSWER_ALWAYS_FILE = "eval_answer_always_predictions.json"
# How each protocol's figures are named in reports: a reader must never wonder which rules a number follows.
PROTOCOLS = {
    "": "SQuAD 2.0 rules (no answer where the null score wins)",
    ANSWER_ALWAYS: "answer-always (each question's best non-empty span)",
}


def protocol_of(metric: str) -> str:
    """The protocol prefix of a figure's name: "" (SQuAD 2.0 rules) or ANSWER_ALWAYS."""
    return ANSWER_ALWAYS if metric.startswith(ANSWER_ALWAYS) else ""


def describe_metric(metric: str) -> str:
    """A figure's name with its protocol spelled out: `answer_always_HasAns_f1` -> `HasAns F1, answer-always
    (each question's best non-empty span)`."""
    prefix = protocol_of(metric)
    name = metric[len(prefix):].replace("HasAns_", "HasAns ").replace("NoAns_", "NoAns ").replace("_", " ")
    name = name.replace("f1", "F1").replace("exact", "exact match")
    return f"{name}, {PROTOCOLS[prefix]}"


def answer_always_predictions(nbest: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, str]:
    """Each question's best non-empty span from its n-best list (best score first), whatever its null score: the
    answer a model gives when it must answer, as MRQA-style evaluations score it ("" only where it found no span).
    On data without unanswerable questions this is what `--version_2_with_negative false` predicts."""
    return {qid: next((entry["text"] for entry in entries if entry["text"]), "") for qid, entries in nbest.items()}


def protocol_scores(predictions: Mapping[str, str], references: Mapping[str, Mapping]) -> dict[str, float]:
    """The squad_v2 metric's figures (exact, f1, total, HasAns_*, NoAns_*) of predictions that already apply their
    protocol's no-answer rule, computed by the metric's own function: equal to the metric, digit for digit."""
    figures = _RULES.squad_v2_scores(dict(predictions), dict(references), no_answer_threshold=float("inf"))
    return {key: value for key, value in figures.items() if not key.startswith("best_")}


def attach_intervals(cell: dict[str, Any], cell_dir: str, examples: Any, resamples: int, confidence: float,
                     seed: int) -> bool:
    """Give a cross_eval.py `cell` (a Dataset's `examples` evaluated into `cell_dir`) its scores under both
    protocols and their bootstrap intervals, from the predictions stored in `cell_dir`, without a model run:

    - SQuAD 2.0 rules: the stored answers (eval_predictions.json); `<figure>_ci` intervals and `answered`, the
      share of questions given a non-empty answer;
    - answer-always: each question's best non-empty span of eval_nbest_predictions.json (written to
      eval_answer_always_predictions.json), figures `answer_always_<figure>` with their intervals.

    Each question's scores go to eval_scores.json. A cell that has them for these bootstrap settings is left
    alone. Returns whether the cell changed."""
    bootstrap = {"resamples": resamples, "confidence": confidence, "seed": seed}
    if cell.get("bootstrap") == bootstrap and f"{ANSWER_ALWAYS}f1_ci" in cell["metrics"]:
        return False
    references = gold_answers(examples)
    predictions = read_json(os.path.join(cell_dir, "eval_predictions.json"))
    always = answer_always_predictions(read_json(os.path.join(cell_dir, "eval_nbest_predictions.json")))
    write_json_atomic(os.path.join(cell_dir, ANSWER_ALWAYS_FILE), always)
    scores = question_scores(predictions, references)
    always_scores = question_scores(always, references)
    write_json_atomic(os.path.join(cell_dir, SCORES_FILE), {
        qid: {"exact": score.exact, "f1": score.f1, "has_answer": score.has_answer,
              f"{ANSWER_ALWAYS}exact": always_scores[qid].exact, f"{ANSWER_ALWAYS}f1": always_scores[qid].f1}
        for qid, score in scores.items()
    }, indent=None)
    metrics = cell["metrics"]
    metrics.update(score_intervals(scores, resamples, confidence, seed))
    metrics["answered"] = 100.0 * sum(bool(predictions[qid]) for qid in references) / len(references)
    metrics.update({ANSWER_ALWAYS + key: value for key, value in protocol_scores(always, references).items()})
    metrics.update({ANSWER_ALWAYS + key: value
                    for key, value in score_intervals(always_scores, resamples, confidence, seed).items()})
    cell["bootstrap"] = bootstrap
    return True


def question_values(cell_dir: str, metric: str) -> np.ndarray:
    """The per-question values (0-1) behind a cell's `metric` (exact, f1, HasAns_* or NoAns_*, either protocol),
    from its eval_scores.json: the questions a bootstrap of that figure resamples."""
    prefix = protocol_of(metric)
    name = metric[len(prefix):]
    group, _, figure = name.rpartition("_") if name.startswith(("HasAns_", "NoAns_")) else ("", "", name)
    scores = read_json(os.path.join(cell_dir, SCORES_FILE)).values()
    kept = [score for score in scores if group == "" or score["has_answer"] == (group == "HasAns")]
    return np.array([score[prefix + figure] for score in kept], dtype=float)


def rank_correlation_interval(
    cells: Mapping[Any, np.ndarray], reference: Mapping[Any, float], resamples: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> dict[str, Any]:
    """The Spearman rank correlation of our cells' means with a reference's values for the same cells, and its
    percentile bootstrap interval: each resample draws every cell's questions again (with replacement, seeded),
    so the interval holds the noise of every cell at once. `cells`: cell -> its per-question values (0-1)."""
    from scipy.stats import spearmanr

    keys = [key for key in cells if key in reference and len(cells[key])]
    if len(keys) < 3:
        return {"cells": len(keys), "spearman": None, "interval": None}
    theirs = np.array([reference[key] for key in keys], dtype=float)
    ours = np.array([cells[key].mean() for key in keys])
    rng = np.random.default_rng(seed)
    resampled = np.empty((resamples, len(keys)))
    for column, key in enumerate(keys):
        values = cells[key]
        chunk = max(1, 2_000_000 // values.size)
        for start in range(0, resamples, chunk):
            stop = min(resamples, start + chunk)
            resampled[start:stop, column] = values[rng.integers(0, values.size, size=(stop - start, values.size))].mean(1)
    rhos = np.array([spearmanr(row, theirs).statistic for row in resampled])
    rhos = rhos[~np.isnan(rhos)]  # a resample whose cells all tie has no rank order
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(rhos, [tail, 100 - tail]) if len(rhos) else (math.nan, math.nan)
    return {"cells": len(keys), "spearman": float(spearmanr(ours, theirs).statistic),
            "interval": [float(low), float(high)], "resamples": resamples, "confidence": confidence, "seed": seed}
