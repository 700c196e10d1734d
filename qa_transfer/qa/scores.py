"""Per-question SQuAD 2.0 scores, the two scoring protocols of a matrix cell, and bootstrap confidence intervals.

A matrix cell's EM and F1 are means over its questions; on a few hundred questions the mean moves by several points
with the draw of questions alone. `question_scores` scores each question by the official SQuAD 2.0 rules (the same
functions the squad_v2 metric uses: its mean over the questions is the metric's exact / f1), and
`bootstrap_interval` resamples the questions (seeded) for a percentile interval of the mean, so that a reader sees
how far two cells can be compared before comparing them. `paired_difference` compares two systems on the same
resampled questions, and `ThresholdSweep` resamples the best-threshold figures (best_exact, best_f1).

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
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_transfer.core.columns import arrow_columns
from qa_transfer.core.results_io import read_json, write_json_atomic

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
    exact, f1 = _RULES.raw_scores(predictions, references)
    has_answer = _RULES.has_answers(references)
    return {qid: QuestionScore(float(exact[qid]), float(f1[qid]), has_answer[qid]) for qid in references}


def bootstrap_statistics(size: int, statistic: Callable[[np.ndarray], np.ndarray], resamples: int = 1000,
                         seed: int | np.random.Generator = 0) -> np.ndarray:
    """`statistic` of each of `resamples` seeded resamples with replacement of `size` questions: it maps a
    (resamples in a chunk, size) array of question indices to one value per resample. `seed` may be a Generator
    that several calls draw from in turn."""
    if size == 0:
        raise ValueError("no values to resample")
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    # In chunks, so that a large set never holds resamples x questions indices at once.
    chunk = max(1, 2_000_000 // size)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        values[start:stop] = statistic(rng.integers(0, size, size=(stop - start, size)))
    return values


def percentile_interval(values: np.ndarray, confidence: float, point: float) -> tuple[float, float]:
    """The `confidence` central share of resampled `values`, widened to hold the `point` estimate (rounding in the
    percentile can put a bound a hair past the value of a constant set)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(min(low, point)), float(max(high, point))


def bootstrap_interval(values: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` x 100 (scores in [0, 1] -> points): the
    `confidence` central share of the means of `resamples` seeded resamples with replacement. One value, or all
    equal, gives the degenerate interval [v, v]."""
    values = np.asarray(values, dtype=float)
    means = bootstrap_statistics(values.size, lambda indices: values[indices].mean(axis=1), resamples, seed)
    low, high = percentile_interval(means, confidence, values.mean())
    return 100 * low, 100 * high


@dataclass(frozen=True)
class PairedDifference:
    difference: float  # the mean of b - a, in points
    interval: list[float]  # its percentile bootstrap interval
    below_zero: float  # the share of resamples whose difference is < 0
    above_zero: float  # ... and > 0


def resampled_difference(differences: np.ndarray, point: float, confidence: float) -> PairedDifference:
    """A PairedDifference from the resampled differences (in points) and the difference on all questions."""
    return PairedDifference(point, list(percentile_interval(differences, confidence, point)),
                            float(np.mean(differences < 0)), float(np.mean(differences > 0)))


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> PairedDifference:
    """The mean of b - a (x100) over the same questions, with its bootstrap interval: both systems are scored on
    the same resampled questions, so the interval is that of the difference itself, far narrower than two separate
    intervals."""
    difference = 100 * (np.asarray(b, dtype=float) - np.asarray(a, dtype=float))
    means = bootstrap_statistics(difference.size, lambda indices: difference[indices].mean(axis=1), resamples, seed)
    return resampled_difference(means, float(difference.mean()), confidence)


def question_counts(indices: np.ndarray, size: int) -> np.ndarray:
    """How often each of `size` questions is drawn in each row of `indices`."""
    rows = indices.shape[0]
    offsets = (indices + size * np.arange(rows)[:, None]).ravel()
    return np.bincount(offsets, minlength=rows * size).reshape(rows, size)


@dataclass(frozen=True)
class ThresholdSweep:
    """The squad_v2 metric's best-threshold search (`best_threshold`) over resampled questions: questions in the
    order the search meets them, what answering each adds, and which ones abstaining gets right. Questions without a
    prediction are in none of them: wrong at every threshold."""

    order: np.ndarray  # question indices, by rising no-answer score
    gains: np.ndarray  # what answering each ordered question adds
    abstain_right: np.ndarray  # bool per question: unanswerable, with a prediction

    @classmethod
    def build(cls, qids: list[str], raw: Mapping[str, float], na_scores: Mapping[str, float],
              has_answer: Mapping[str, bool], predictions: Mapping[str, str]) -> ThresholdSweep:
        position = {qid: index for index, qid in enumerate(qids)}
        ordered = [qid for qid in sorted(na_scores, key=na_scores.__getitem__) if qid in raw]
        gains = [raw[qid] if has_answer[qid] else -float(bool(predictions[qid])) for qid in ordered]
        abstain_right = np.array([qid in raw and not has_answer[qid] for qid in qids])
        return cls(np.array([position[qid] for qid in ordered], dtype=int), np.array(gains, dtype=float),
                   abstain_right)

    def best_scores(self, counts: np.ndarray) -> np.ndarray:
        """The best score (%) of each resample, given as a (resamples, questions) array of question counts."""
        start = counts[:, self.abstain_right].sum(axis=1).astype(float)
        running = start[:, None] + np.cumsum(counts[:, self.order] * self.gains, axis=1)
        best = np.maximum(start, running.max(axis=1, initial=-np.inf))
        return 100 * best / counts.shape[1]


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


def question_values(scores: Mapping[str, Mapping[str, Any]], metric: str) -> np.ndarray:
    """The per-question values (0-1) behind a cell's `metric` (exact, f1, HasAns_* or NoAns_*, either protocol),
    from its per-question scores as eval_scores.json holds them ({id: {"f1": ..., "has_answer": ...}}): the
    questions a bootstrap of that figure resamples."""
    prefix = protocol_of(metric)
    name = metric[len(prefix):]
    group, _, figure = name.rpartition("_") if name.startswith(("HasAns_", "NoAns_")) else ("", "", name)
    kept = [score for score in scores.values() if group == "" or score["has_answer"] == (group == "HasAns")]
    return np.array([score[prefix + figure] for score in kept], dtype=float)


def centred_by_group(values: np.ndarray, groups: Sequence[Any]) -> np.ndarray:
    """`values` (last axis: one value a cell) less the mean of the cells of the same group, so that only the
    order within each group is left (a matrix's rows: its pattern without each row's level)."""
    labels = np.array([str(group) for group in groups])
    centred = np.array(values, dtype=float)
    for label in np.unique(labels):
        members = labels == label
        centred[..., members] -= centred[..., members].mean(axis=-1, keepdims=True)
    return centred


def rank_correlation_interval(
    cells: Mapping[Any, np.ndarray], reference: Mapping[Any, float], resamples: int = 1000,
    confidence: float = 0.95, seed: int = 0, group_of: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """The Spearman rank correlation of our cells' means with a reference's values for the same cells, and its
    percentile bootstrap interval: each resample draws every cell's questions again (with replacement, seeded),
    so the interval holds the noise of every cell at once. `cells`: cell -> its per-question values (0-1).
    With `group_of` (cell -> its group, e.g. its row), both sides are first centred on their group's mean over
    the cells compared: the agreement of the order within groups, whatever each group's level."""
    from scipy.stats import ConstantInputWarning, spearmanr

    keys = [key for key in cells if key in reference and len(cells[key])]
    if len(keys) < 3:
        return {"cells": len(keys), "spearman": None, "interval": None}
    theirs = np.array([reference[key] for key in keys], dtype=float)
    ours = np.array([cells[key].mean() for key in keys])
    rng = np.random.default_rng(seed)  # one stream through every cell: their resamples are independent
    resampled = np.stack([bootstrap_statistics(cells[key].size, lambda indices, values=cells[key]:
                                               values[indices].mean(axis=1), resamples, rng) for key in keys], axis=1)
    if group_of is not None:
        groups = [group_of(key) for key in keys]
        theirs, ours, resampled = (centred_by_group(values, groups) for values in (theirs, ours, resampled))
    with warnings.catch_warnings():  # a resample whose cells all tie has no rank order: dropped below
        warnings.simplefilter("ignore", ConstantInputWarning)
        rhos = np.array([spearmanr(row, theirs).statistic for row in resampled])
    rhos = rhos[~np.isnan(rhos)]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(rhos, [tail, 100 - tail]) if len(rhos) else (math.nan, math.nan)
    return {"cells": len(keys), "spearman": float(spearmanr(ours, theirs).statistic),
            "interval": [float(low), float(high)], "resamples": resamples, "confidence": confidence, "seed": seed}


@dataclass(frozen=True)
class ScoredPredictions:
    """A predictions file scored as the official SQuAD 2.0 script scores it: its figures, and per question (in the
    data's order) what they average, for the bootstrap."""

    figures: dict[str, float]  # the official script's output, key for key
    qids: list[str]
    has_answer: np.ndarray  # bool per question
    predicted: np.ndarray  # bool per question: the file has a prediction for it
    exact: np.ndarray  # per question after the no-answer threshold; 0 without a prediction
    f1: np.ndarray
    sweeps: dict[str, ThresholdSweep]  # "exact", "f1": the best-threshold search, with no-answer scores only

    def question_rows(self) -> dict[str, dict[str, Any]]:
        return {qid: {"exact": float(self.exact[i]), "f1": float(self.f1[i]), "has_answer": bool(self.has_answer[i]),
                      "predicted": bool(self.predicted[i])} for i, qid in enumerate(self.qids)}


def score_predictions(predictions: Mapping[str, str], references: Mapping[str, Mapping],
                      na_scores: Mapping[str, float] | None = None,
                      no_answer_threshold: float = 1.0) -> ScoredPredictions:
    """Score {id: text} predictions on {id: answers} references as evaluate-v2.0.py does with `na_scores` as its
    --na-prob-file (a missing entry is 0.0) and `no_answer_threshold` as its --na-prob-thresh; predicted ids that
    the references lack are ignored, questions without a prediction are wrong."""
    predictions = {qid: predictions[qid] for qid in references if qid in predictions}
    figures = _RULES.squad_v2_scores(predictions, references, na_scores, no_answer_threshold, official=True)
    qids = list(references)
    has_answer = _RULES.has_answers(references)
    scored_na = dict(na_scores or {})
    for qid in qids:
        scored_na.setdefault(qid, 0.0)
    raw = dict(zip(("exact", "f1"), _RULES.raw_scores(predictions, references)))
    thresholded = {name: _RULES.apply_no_answer_threshold(scores, scored_na, has_answer, no_answer_threshold)
                   for name, scores in raw.items()}
    sweeps = {} if na_scores is None else {
        name: ThresholdSweep.build(qids, scores, scored_na, has_answer, predictions) for name, scores in raw.items()}
    return ScoredPredictions(
        figures=figures, qids=qids, has_answer=np.array([has_answer[qid] for qid in qids], dtype=bool),
        predicted=np.array([qid in predictions for qid in qids], dtype=bool),
        exact=np.array([thresholded["exact"].get(qid, 0.0) for qid in qids], dtype=float),
        f1=np.array([thresholded["f1"].get(qid, 0.0) for qid in qids], dtype=float), sweeps=sweeps)


def figure_groups(scored: ScoredPredictions) -> dict[str, np.ndarray]:
    """The question indices each averaged figure's prefix covers ("": all, "HasAns_", "NoAns_" where present)."""
    groups = {"": np.arange(len(scored.qids))}
    for prefix, mask in (("HasAns_", scored.has_answer), ("NoAns_", ~scored.has_answer)):
        if mask.any():
            groups[prefix] = np.flatnonzero(mask)
    return groups


def figure_intervals(scored: ScoredPredictions, resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> dict[str, list[float]]:
    """The bootstrap interval of each figure, keyed `<figure>_ci`: exact / f1 resampled within their questions,
    best_exact / best_f1 by repeating the threshold search on each resample of all questions."""
    intervals = {}
    for prefix, indices in figure_groups(scored).items():
        for name in ("exact", "f1"):
            values = getattr(scored, name)[indices]
            intervals[f"{prefix}{name}_ci"] = list(bootstrap_interval(values, resamples, confidence, seed))
    size = len(scored.qids)
    for name, sweep in scored.sweeps.items():
        best = bootstrap_statistics(size, lambda indices: sweep.best_scores(question_counts(indices, size)),
                                    resamples, seed)
        low, high = percentile_interval(best, confidence, scored.figures[f"best_{name}"])
        intervals[f"best_{name}_ci"] = [low, high]
    return intervals


def compare_scored(base: ScoredPredictions, other: ScoredPredictions, resamples: int = 1000,
                   confidence: float = 0.95, seed: int = 0) -> dict[str, PairedDifference]:
    """The paired bootstrap difference other - base of each figure both have, on the same questions."""
    if other.qids != base.qids:
        raise ValueError("the two scorings cover different questions")
    differences = {}
    for prefix, indices in figure_groups(base).items():
        for name in ("exact", "f1"):
            differences[f"{prefix}{name}"] = paired_difference(
                getattr(base, name)[indices], getattr(other, name)[indices], resamples, confidence, seed)
    size = len(base.qids)
    for name in [name for name in base.sweeps if name in other.sweeps]:
        def best_difference(indices: np.ndarray, name: str = name) -> np.ndarray:
            counts = question_counts(indices, size)
            return other.sweeps[name].best_scores(counts) - base.sweeps[name].best_scores(counts)

        resampled = bootstrap_statistics(size, best_difference, resamples, seed)
        point = other.figures[f"best_{name}"] - base.figures[f"best_{name}"]
        differences[f"best_{name}"] = resampled_difference(resampled, point, confidence)
    return differences
