"""The QA post-processing written plainly: the oracle that the tests (tests/qa/test_utils_qa.py) and the benchmark
(bench/bench_postprocess.py) compare utils_qa.postprocess_qa_predictions, the vectorised one every evaluation runs,
with.

`plain_loop_postprocess` is the post-processing loop of the transformers question-answering example
(examples/pytorch/question-answering/utils_qa.py) with this project's rules, written the way a user who knows to
avoid per-row Arrow access would write it. It reads every column once, whole (the same core.columns helpers as
utils_qa, offsets as one numpy array), then loops: per window the top-n starts and top-n ends (a stable sort of the
row), every start x end pair checked (inside the context, end >= start, at most max_answer_length tokens), each
valid pair a candidate dict; per question the n best candidates, the lowest [CLS] score over its windows as the
null entry, a softmax over the n-best scores, the null odds. `compare_outputs` lists where two outputs differ.

Nothing in the scripts runs it: it is slow on purpose (readable, one Python loop), and only checks the fast one.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from datasets import Dataset

from qa_transfer.core.columns import arrow_column, column_array, column_list, list_lengths
from utils_qa import QAPredictions


def plain_loop_postprocess(
    examples: Dataset,
    features: Dataset,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    version_2_with_negative: bool = False,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
) -> QAPredictions:
    """The answers, n-best lists and null odds of utils_qa.postprocess_qa_predictions (the same arguments, the
    same QAPredictions), computed by the transformers example's loop: question by question, window by window,
    every start x end pair of the top-n starts and ends. The columns are read once, whole."""
    example_ids = column_list(examples, "id")
    contexts = column_list(examples, "context")
    feature_example_ids = column_list(features, "example_id")
    context_starts = column_array(features, "context_start").tolist()
    context_ends = column_array(features, "context_end").tolist()
    offsets_column = arrow_column(features, "offset_mapping")
    offsets = offsets_column.flatten().flatten().to_numpy(zero_copy_only=False).reshape(-1, 2)
    window_first = np.concatenate([[0], np.cumsum(list_lengths(offsets_column))]).tolist()

    windows_of = defaultdict(list)
    for window, example_id in enumerate(feature_example_ids):
        windows_of[example_id].append(window)

    result = QAPredictions(predictions={}, nbest={})
    for example_id, context in zip(example_ids, contexts):
        candidates = []
        min_null = None
        for window in windows_of[example_id]:
            starts, ends = start_logits[window], end_logits[window]
            window_offsets = offsets[window_first[window] : window_first[window + 1]]
            lo, hi = context_starts[window], context_ends[window]
            null_score = float(starts[0]) + float(ends[0])
            if min_null is None or null_score < min_null["score"]:
                min_null = {"text": "", "offsets": [0, 0], "start_logit": float(starts[0]),
                            "end_logit": float(ends[0]), "score": null_score}
            start_indexes = np.argsort(-starts, kind="stable")[:n_best_size].tolist()
            end_indexes = np.argsort(-ends, kind="stable")[:n_best_size].tolist()
            start_values = starts[start_indexes].tolist()
            end_values = ends[end_indexes].tolist()
            for start_index, start_logit in zip(start_indexes, start_values):
                for end_index, end_logit in zip(end_indexes, end_values):
                    if not (lo <= start_index <= hi and lo <= end_index <= hi):
                        continue  # a token outside the context (question, special tokens, padding)
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    char_start = int(window_offsets[start_index, 0])
                    char_end = int(window_offsets[end_index, 1])
                    candidates.append({"text": context[char_start:char_end], "offsets": [char_start, char_end],
                                       "start_logit": start_logit, "end_logit": end_logit,
                                       "score": start_logit + end_logit})
        candidates = sorted(candidates, key=lambda c: c["score"], reverse=True)[:n_best_size]
        best = candidates[0] if candidates else None
        entries = candidates
        if version_2_with_negative and min_null is not None:
            entries = sorted(candidates + [min_null], key=lambda c: c["score"], reverse=True)
        if entries:
            scores = np.array([entry["score"] for entry in entries])
            weights = np.exp(scores - scores.max())
            for entry, probability in zip(entries, (weights / weights.sum()).tolist()):
                entry["probability"] = probability
        result.nbest[example_id] = entries
        if not version_2_with_negative:
            result.predictions[example_id] = best["text"] if best else ""
            continue
        odds = min_null["score"] - best["score"] if best and min_null else float("inf")
        result.null_odds[example_id] = odds
        result.predictions[example_id] = "" if best is None or odds > null_score_diff_threshold else best["text"]
    return result


def compare_outputs(ours: QAPredictions, loop: QAPredictions, probability_tolerance: float = 1e-12) -> list[str]:
    """The differences between two post-processing outputs, each a sentence (empty when they agree): answers,
    null odds and n-best lists (texts, offsets, logits, scores) exactly, probabilities within
    `probability_tolerance` (the softmax is summed in another order)."""
    problems = []
    if ours.predictions != loop.predictions:
        differ = [q for q in loop.predictions if ours.predictions.get(q) != loop.predictions[q]]
        problems.append(f"answers differ for {len(differ)} questions, e.g. {differ[:3]}")
    if ours.null_odds != loop.null_odds:
        problems.append("null odds differ")
    if list(ours.nbest) != list(loop.nbest):
        problems.append("n-best lists are keyed differently")
    for question, loop_entries in loop.nbest.items():
        our_entries = ours.nbest.get(question, [])
        exact = [{key: value for key, value in entry.items() if key != "probability"} for entry in our_entries]
        if exact != [{key: value for key, value in entry.items() if key != "probability"} for entry in loop_entries]:
            problems.append(f"n-best list of {question} differs")
            break
        probabilities = [entry["probability"] for entry in our_entries]
        if not np.allclose(probabilities, [entry["probability"] for entry in loop_entries], rtol=0,
                           atol=probability_tolerance):
            problems.append(f"n-best probabilities of {question} differ")
            break
    return problems
