"""QA post-processing and evaluation: a Trainer's window logits turned into one answer per question (vectorised),
scored with the squad_v2 metric, and written as the prediction files; `evaluate_qa` is the one evaluation that
run_qa.py's eval and predict steps and every cross_eval.py cell run. The windows themselves are cut by
qa_transfer/qa/windows.py, the Trainer is qa_transfer/qa/training.py's.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import EvalPrediction, Trainer

from qa_transfer.core.columns import arrow_columns, list_offsets, to_numpy
from qa_transfer.core.results_io import write_json_atomic
from qa_transfer.qa.arguments import PostprocessConfig
from qa_transfer.qa.data import answer_counts
from qa_transfer.qa.windows import gc_paused, model_inputs

logger = logging.getLogger("qa_transfer.utils_qa")


def top_k_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the `k` largest values, largest first and the leftmost first among equals:
    `np.argsort(-values, axis=1, kind="stable")[:, :k]` (NaN ranks lowest), without sorting whole rows."""
    n_rows, width = values.shape
    k = min(k, width)
    if k == 0 or n_rows == 0:
        return np.zeros((n_rows, k), dtype=np.int64)
    # np.partition is vectorised (np.argpartition is far slower): the k-th largest value bounds each top k.
    kth_largest = np.partition(values, width - k, axis=1)[:, width - k, None]
    wanted = values >= kth_largest
    counts = np.count_nonzero(wanted, axis=1)
    if (counts < k).any():  # NaN in a row's top k (np.partition puts NaN last): sort every row whole
        return np.argsort(-values, axis=1, kind="stable")[:, :k]
    tied = np.nonzero(counts > k)[0]
    if len(tied):  # more values equal the k-th largest than there are places left: keep the leftmost ones
        row_values, row_kth = values[tied], kth_largest[tied]
        above, at = row_values > row_kth, row_values == row_kth
        wanted[tied] = above | (at & (np.cumsum(at, axis=1) <= k - above.sum(axis=1, keepdims=True)))
    # Exactly k marks per row; np.flatnonzero is much faster than np.nonzero's per-axis indices.
    columns = np.flatnonzero(wanted).reshape(n_rows, k) - width * np.arange(n_rows)[:, None]
    order = np.argsort(-np.take_along_axis(values, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


@dataclass
class NBestTable:
    """Every example's n-best entries as flat arrays, example after example (entries `first[i]` to
    `first[i + 1]` belong to example i), from which the n-best lists are built on demand."""

    example_ids: list[str]
    contexts: list[str]
    first: np.ndarray
    example: np.ndarray
    chars: np.ndarray  # (n_entries, 2) character offsets in the context; (0, 0) for the null entry
    start_logit: np.ndarray
    end_logit: np.ndarray
    score: np.ndarray
    probability: np.ndarray

    def to_lists(self) -> dict[str, list[dict[str, Any]]]:
        with gc_paused():
            entries = [
                {"text": self.contexts[ex][cs:ce], "offsets": [cs, ce], "start_logit": start, "end_logit": end,
                 "score": score, "probability": probability}
                for ex, cs, ce, start, end, score, probability in zip(
                    self.example.tolist(), self.chars[:, 0].tolist(), self.chars[:, 1].tolist(),
                    self.start_logit.tolist(), self.end_logit.tolist(), self.score.tolist(),
                    self.probability.tolist(),
                )
            ]
            bounds = self.first.tolist()
            return {example_id: entries[bounds[ex] : bounds[ex + 1]] for ex, example_id in enumerate(self.example_ids)}


class QAPredictions:
    """Post-processed output, keyed by example id, in example order: the answers, the null odds (with
    unanswerable questions), the n-best lists and each answer's character offsets in its context (None for "").
    The n-best lists, hundreds of thousands of small dicts for a dev set, are built on first use (writing the
    prediction files), not for every evaluation's metrics."""

    def __init__(
        self,
        predictions: dict[str, str],
        nbest: dict[str, list[dict[str, Any]]] | NBestTable,
        null_odds: dict[str, float] | None = None,
        answer_offsets: dict[str, tuple[int, int] | None] | None = None,
    ):
        self.predictions = predictions
        self._nbest = nbest
        self.null_odds = null_odds if null_odds is not None else {}
        self.answer_offsets = answer_offsets if answer_offsets is not None else {}

    @property
    def nbest(self) -> dict[str, list[dict[str, Any]]]:
        if isinstance(self._nbest, NBestTable):
            self._nbest = self._nbest.to_lists()
        return self._nbest


def postprocess_qa_predictions(
    examples: Dataset,
    features: Dataset,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    version_2_with_negative: bool = False,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
) -> QAPredictions:
    """Turn window logits into one answer per example, vectorised over all windows at once.

    Per window, the `n_best_size` best start and end tokens (the earlier token first on ties) are paired; a pair
    is a candidate when both tokens lie in the window's context, end >= start and the span has at most
    `max_answer_length` tokens. Each example keeps its `n_best_size` best candidates over all its windows
    (score = start logit + end logit; ties keep the order of a plain loop over windows, start ranks, end ranks).
    With negatives, the null score is the lowest first-token score (position 0: [CLS], <s>) over the example's
    windows (the first such window supplies its logits); it joins the n-best list after any span of equal score;
    the null odds are null score - best span score, and the answer is "" when they exceed
    `null_score_diff_threshold`. Probabilities are the softmax of the n-best scores.

    Each column is read once, whole (dataset_columns); nothing is read per row.
    """
    # Selection runs on the logits as given (float32 from the Trainer); scores are summed in float64.
    start_logits = np.asarray(start_logits)
    end_logits = np.asarray(end_logits)
    n_features = start_logits.shape[0]
    if n_features != len(features):
        raise ValueError(f"got logits for {n_features} windows but there are {len(features)} windows")
    example_columns = arrow_columns(examples, ["id", "context"])
    example_ids = example_columns["id"].to_pylist()
    contexts = example_columns["context"].to_pylist()
    n_examples = len(example_ids)
    columns = arrow_columns(features, ["example_id", "context_start", "context_end", "offset_mapping"])
    example_index = {example_id: i for i, example_id in enumerate(example_ids)}
    feature_example = np.fromiter(
        (example_index[e] for e in columns["example_id"].to_pylist()), dtype=np.int64, count=n_features
    )
    context_start = to_numpy(columns["context_start"], np.int64)[:, None]
    context_end = to_numpy(columns["context_end"], np.int64)[:, None]
    flat_offsets, window_first = list_offsets(columns["offset_mapping"])

    feat_idx, starts, ends = _candidate_spans(start_logits, end_logits, context_start, context_end, n_best_size,
                                              max_answer_length)
    span_start_logit = start_logits[feat_idx, starts].astype(np.float64)
    span_end_logit = end_logits[feat_idx, ends].astype(np.float64)
    scores = span_start_logit + span_end_logit
    cand_example = feature_example[feat_idx]

    # Each example's best n over its windows: a stable sort on (example, -score) keeps the loop order on ties.
    order = np.lexsort((-scores, cand_example))
    sorted_example = cand_example[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_example, sorted_example, side="left")
    keep = order[rank < n_best_size]
    rank = rank[rank < n_best_size]
    span_example = cand_example[keep]
    span_score = scores[keep]
    span_window_first = window_first[feat_idx[keep]]
    span_chars = np.stack(
        [flat_offsets[span_window_first + starts[keep], 0], flat_offsets[span_window_first + ends[keep], 1]], axis=1
    )
    span_count = np.bincount(span_example, minlength=n_examples)
    best_span = np.full(n_examples, -1)
    best_span[span_example[rank == 0]] = np.nonzero(rank == 0)[0]

    lowest_window, null_score = _null_entries(start_logits, end_logits, feature_example, n_examples)
    has_null = (lowest_window >= 0) & version_2_with_negative

    # The n-best entries, example after example: an example's spans, with its null entry placed after every
    # span scoring at least as much (as a stable sort of the spans followed by the null entry would).
    null_position = np.bincount(span_example, weights=span_score >= null_score[span_example], minlength=n_examples)
    null_position = null_position.astype(np.int64)
    entry_count = span_count + has_null
    entry_first = np.concatenate([[0], np.cumsum(entry_count)])
    span_slot = entry_first[span_example] + rank + (has_null[span_example] & (rank >= null_position[span_example]))
    null_slot = (entry_first[:-1] + null_position)[has_null]
    n_entries = int(entry_first[-1])
    entry_example = np.empty(n_entries, dtype=np.int64)
    entry_chars = np.zeros((n_entries, 2), dtype=np.int64)
    entry_start_logit, entry_end_logit, entry_score = np.empty(n_entries), np.empty(n_entries), np.empty(n_entries)
    entry_example[span_slot], entry_example[null_slot] = span_example, np.nonzero(has_null)[0]
    entry_chars[span_slot] = span_chars
    entry_start_logit[span_slot] = span_start_logit[keep]
    entry_start_logit[null_slot] = start_logits[lowest_window[has_null], 0]
    entry_end_logit[span_slot] = span_end_logit[keep]
    entry_end_logit[null_slot] = end_logits[lowest_window[has_null], 0]
    entry_score[span_slot], entry_score[null_slot] = span_score, null_score[has_null]
    nbest = NBestTable(
        example_ids, contexts, entry_first, entry_example, entry_chars, entry_start_logit, entry_end_logit,
        entry_score, _group_softmax(entry_score, entry_example, entry_first, entry_count),
    )

    predictions, null_odds, offsets = _answers(example_ids, contexts, span_chars, span_score, best_span, null_score,
                                               version_2_with_negative, null_score_diff_threshold)
    return QAPredictions(predictions, nbest, null_odds, offsets)


def _candidate_spans(start_logits: np.ndarray, end_logits: np.ndarray, context_start: np.ndarray,
                     context_end: np.ndarray, n_best_size: int,
                     max_answer_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate spans of every window as (window, start token, end token) arrays: the best starts x the best
    ends of each window, kept when both tokens lie in the context, end >= start and the span is short enough.
    np.nonzero walks window, start rank, end rank: the plain loop's order, by which the caller breaks ties."""
    seq_len = start_logits.shape[1]
    position = np.int16 if seq_len < 2**15 else np.int32  # small integers: less memory to stream through
    top_starts = top_k_indices(start_logits, n_best_size).astype(position)
    top_ends = top_k_indices(end_logits, n_best_size).astype(position)
    k = top_starts.shape[1]
    start_inside = (top_starts >= context_start) & (top_starts <= context_end)
    end_inside = (top_ends >= context_start) & (top_ends <= context_end)
    end_minus_start = top_ends[:, None, :] - top_starts[:, :, None]
    valid = (start_inside[:, :, None] & end_inside[:, None, :] & (end_minus_start >= 0)
             & (end_minus_start < max_answer_length))
    feat_idx, pair = np.divmod(np.flatnonzero(valid), k * k)
    start_rank, end_rank = np.divmod(pair, k)
    starts = top_starts[feat_idx, start_rank]
    ends = top_ends[feat_idx, end_rank]
    return feat_idx, starts, ends


def _null_entries(start_logits: np.ndarray, end_logits: np.ndarray, feature_example: np.ndarray,
                  n_examples: int) -> tuple[np.ndarray, np.ndarray]:
    """Each example's null score, its lowest first-token ([CLS]) score over its windows (inf without a window),
    and the first of its windows with that score (-1 without a window)."""
    n_features = len(feature_example)
    null_scores = start_logits[:, 0].astype(np.float64) + end_logits[:, 0].astype(np.float64)
    by_null = np.lexsort((np.arange(n_features), null_scores, feature_example))
    first_of_group = np.ones(n_features, dtype=bool)
    first_of_group[1:] = feature_example[by_null][1:] != feature_example[by_null][:-1]
    lowest_window = np.full(n_examples, -1)
    lowest_window[feature_example[by_null[first_of_group]]] = by_null[first_of_group]
    return lowest_window, np.where(lowest_window >= 0, null_scores[lowest_window], np.inf)


def _answers(
    example_ids: list[str], contexts: list[str], span_chars: np.ndarray, span_score: np.ndarray,
    best_span: np.ndarray, null_score: np.ndarray, version_2_with_negative: bool, null_score_diff_threshold: float,
) -> tuple[dict[str, str], dict[str, float], dict[str, tuple[int, int] | None]]:
    """Each example's answer, its best span (`best_span`: its index, -1 for none) or, with negatives, "" when the
    null odds (null score - best span score) exceed the threshold; the null odds (none without negatives); and
    each answer's character offsets (None for "")."""
    n_examples = len(example_ids)
    has_span = best_span >= 0
    best_span = np.maximum(best_span, 0)
    best_chars = span_chars[best_span] if len(span_chars) else np.zeros((n_examples, 2), dtype=np.int64)
    best_score = span_score[best_span] if len(span_score) else np.zeros(n_examples)
    best_offsets = list(zip(best_chars[:, 0].tolist(), best_chars[:, 1].tolist()))
    best_text = [context[cs:ce] if found else ""
                 for context, found, (cs, ce) in zip(contexts, has_span.tolist(), best_offsets)]
    odds = np.where(has_span, null_score - best_score, np.inf)
    answered = has_span & ~(odds > null_score_diff_threshold) if version_2_with_negative else has_span
    offsets = {example_id: span if ok else None
               for example_id, span, ok in zip(example_ids, best_offsets, answered.tolist())}
    if not version_2_with_negative:
        return dict(zip(example_ids, best_text)), {}, offsets
    predictions = {example_id: text if ok else ""
                   for example_id, text, ok in zip(example_ids, best_text, answered.tolist())}
    return predictions, dict(zip(example_ids, odds.tolist())), offsets


def _group_softmax(scores: np.ndarray, group: np.ndarray, group_first: np.ndarray,
                   group_size: np.ndarray) -> np.ndarray:
    """The softmax of `scores` within each group of consecutive entries (`group` numbers them)."""
    if len(scores) == 0:
        return scores
    nonempty = group_size > 0
    group_max = np.zeros(len(group_size))
    group_max[nonempty] = np.maximum.reduceat(scores, group_first[:-1][nonempty])
    weights = np.exp(scores - group_max[group])
    totals = np.zeros(len(group_size))
    totals[nonempty] = np.add.reduceat(weights, group_first[:-1][nonempty])
    return weights / totals[group]


def metric_inputs(examples: Dataset, output: QAPredictions) -> tuple[list[dict], list[dict]]:
    """Predictions and references in the squad_v2 metric's input format."""
    predictions = [
        {"id": example_id, "prediction_text": text, "no_answer_probability": output.null_odds.get(example_id, 0.0)}
        for example_id, text in output.predictions.items()
    ]
    columns = arrow_columns(examples, ["id", "answers"])
    references = [
        {"id": example_id, "answers": answers}
        for example_id, answers in zip(columns["id"].to_pylist(), columns["answers"].to_pylist())
    ]
    return predictions, references


class QAEvaluator:
    """The Trainer's `compute_metrics` for QA: post-processes the gathered window logits of one evaluation
    set into answers and scores them with the squad_v2 metric. Keeps the last predictions for writing."""

    def __init__(self, examples: Dataset, features: Dataset, config: PostprocessConfig, metric: Any):
        self.examples = examples
        self.features = features
        self.config = config
        self.metric = metric
        self.last_output: QAPredictions | None = None

    def postprocess(self, start_logits: np.ndarray, end_logits: np.ndarray) -> QAPredictions:
        self.last_output = postprocess_qa_predictions(
            self.examples, self.features, start_logits, end_logits,
            version_2_with_negative=self.config.version_2_with_negative,
            n_best_size=self.config.n_best_size,
            max_answer_length=self.config.max_answer_length,
            null_score_diff_threshold=self.config.null_score_diff_threshold,
        )
        return self.last_output

    def score(self, output: QAPredictions) -> dict[str, float]:
        predictions, references = metric_inputs(self.examples, output)
        # The predictions already apply the null threshold; score the texts as they are.
        return self.metric.compute(predictions=predictions, references=references, no_answer_threshold=float("inf"))

    def __call__(self, eval_prediction: EvalPrediction) -> dict[str, float]:
        start_logits, end_logits = eval_prediction.predictions[:2]
        return self.score(self.postprocess(start_logits, end_logits))


def write_prediction_files(output_dir: str, prefix: str, output: QAPredictions) -> None:
    """`{prefix}_predictions.json`, `{prefix}_nbest_predictions.json` and, with negatives, `{prefix}_null_odds.json`."""
    write_json_atomic(os.path.join(output_dir, f"{prefix}_predictions.json"), output.predictions)
    write_json_atomic(os.path.join(output_dir, f"{prefix}_nbest_predictions.json"), output.nbest)
    if output.null_odds:
        write_json_atomic(os.path.join(output_dir, f"{prefix}_null_odds.json"), output.null_odds)


def evaluate_qa(
    trainer: Trainer,
    examples: Dataset,
    features: Dataset,
    config: PostprocessConfig,
    metric: Any,
    prefix: str = "eval",
) -> tuple[dict[str, Any], QAPredictions]:
    """`trainer`'s model on `features`, the windows of `examples` with their post-processing columns: each
    question's answer, and the metrics (`<prefix>_exact`, `_f1`, ... when the examples have gold answers, the
    Trainer's loss and runtime, `<prefix>_samples` and `<prefix>_windows`). "eval" goes through
    `Trainer.evaluate` (logged, seen by callbacks), any other prefix through `Trainer.predict`."""
    evaluator = QAEvaluator(examples, features, config, metric)
    if prefix == "eval":
        kept, trainer.compute_metrics = trainer.compute_metrics, evaluator
        try:
            metrics = trainer.evaluate(model_inputs(features), metric_key_prefix=prefix)
        finally:
            trainer.compute_metrics = kept
        answers = evaluator.last_output
    else:
        output = trainer.predict(model_inputs(features), metric_key_prefix=prefix)
        answers = evaluator.postprocess(*output.predictions[:2])
        metrics = dict(output.metrics)
        if answer_counts(examples).any():  # a test file with gold answers is scored too
            metrics.update({f"{prefix}_{key}": value for key, value in evaluator.score(answers).items()})
    metrics[f"{prefix}_samples"] = len(examples)
    metrics[f"{prefix}_windows"] = len(features)
    return metrics, answers
