"""Shared extractive-QA machinery: window features, vectorised post-processing, and the evaluator that
turns a Trainer's logits into SQuAD 2.0 predictions and metrics. Used by run_qa.py and cross_eval.py.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset
from transformers import (
    DataCollatorWithPadding,
    EvalPrediction,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    default_data_collator,
)

from results_io import write_json_atomic

logger = logging.getLogger(__name__)

METRIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "squad_v2_metric")
# Feature columns that post-processing needs but the model must not see.
POSTPROCESS_COLUMNS = ["example_id", "offset_mapping", "context_start", "context_end"]


@dataclass
class QAEvalArguments:
    """How questions are windowed, sampled and turned into answers: the arguments that run_qa.py and
    cross_eval.py share, so that a cross-evaluation cell is computed exactly as `run_qa.py --do_eval` would."""

    max_seq_length: int = field(default=384, metadata={"help": "Tokens per window (question + context)."})
    doc_stride: int = field(default=128, metadata={"help": "Tokens of overlap between consecutive windows."})
    max_query_length: int = field(default=64, metadata={"help": "Questions are cut to this many tokens."})
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every window to max_seq_length (default: pad each batch to its longest)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on at most this many questions."})
    subset_strategy: str = field(
        default="random",
        metadata={"help": "How --max_*_samples/--train_fraction pick questions: 'random' (seeded by --seed) or 'first'."},
    )
    version_2_with_negative: bool | None = field(
        default=None,
        metadata={"help": "Allow 'no answer' (default: whether the data has unanswerable questions, or the fine-tuned "
                          "model's qa_run_info.json says it was trained with them)."},
    )
    null_score_diff_threshold: float = field(
        default=0.0, metadata={"help": "Answer '' when null score - best span score exceeds this (see best_f1_thresh)."}
    )
    n_best_size: int = field(default=20, metadata={"help": "Start/end candidates per window, and answers kept."})
    max_answer_length: int = field(default=30, metadata={"help": "Longest answer, in tokens."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for windowing."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Recompute cached windows."})

    def __post_init__(self):
        if self.subset_strategy not in ("random", "first"):
            raise ValueError(f"--subset_strategy must be 'random' or 'first', not {self.subset_strategy!r}")
        if self.doc_stride >= self.max_seq_length - self.max_query_length - 3:
            raise ValueError("--doc_stride must leave room for new context in each window: lower it or raise --max_seq_length")

    def window_config(self, tokenizer: PreTrainedTokenizerBase) -> "WindowConfig":
        """The windowing for this tokenizer; a ValueError when --doc_stride leaves it no new context per window
        (the special tokens of a question/context pair differ: 3 for BERT, 4 for RoBERTa and MPNet)."""
        check_qa_tokenizer(tokenizer)
        max_seq_length = min(self.max_seq_length, tokenizer.model_max_length)
        context_room = max_seq_length - self.max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
        if self.doc_stride >= context_room:
            raise ValueError(
                f"--doc_stride {self.doc_stride} must be below {context_room} for this tokenizer ({max_seq_length} "
                f"tokens per window - {self.max_query_length} of question - "
                f"{tokenizer.num_special_tokens_to_add(pair=True)} special): lower it or raise --max_seq_length"
            )
        return WindowConfig(max_seq_length, self.doc_stride, self.max_query_length, self.pad_to_max_length)

    def postprocess_config(self, version_2_with_negative: bool) -> "PostprocessConfig":
        return PostprocessConfig(
            version_2_with_negative, self.n_best_size, self.max_answer_length, self.null_score_diff_threshold
        )


def check_qa_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """A ValueError unless the tokenizer can window QA examples: a fast tokenizer (answers map back to text
    through its character offsets) that pads on the right. Windows are question first, context second, and the
    unanswerable target is the first token ([CLS] or <s>); left padding would move both under dynamic padding."""
    if not tokenizer.is_fast:
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; QA needs one (answers map back to text through "
            "its character offsets)"
        )
    if tokenizer.padding_side != "right":
        raise ValueError(
            f"the tokenizer pads on the {tokenizer.padding_side}; QA windows need right padding: set "
            '"padding_side": "right" in the model\'s tokenizer_config.json'
        )


def qa_data_collator(tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool, training_args: TrainingArguments):
    """Windows are already padded with --pad_to_max_length; otherwise pad each batch to its longest window
    (to a multiple of 8 under mixed precision, for tensor cores)."""
    if pad_to_max_length:
        return default_data_collator
    mixed = training_args.fp16 or training_args.bf16
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if mixed else None)


@dataclass
class WindowConfig:
    """How a (question, context) pair is cut into model inputs."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    pad_to_max_length: bool = False


def truncate_questions(questions: list[str], tokenizer: PreTrainedTokenizerBase, max_query_length: int) -> list[str]:
    """Strip leading whitespace (some SQuAD questions have a lot) and cut questions to `max_query_length`
    tokens, so a long question can never crowd the context out of the window."""
    questions = [q.lstrip() for q in questions]
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        q if len(offsets) <= max_query_length else q[: offsets[max_query_length - 1][1]]
        for q, offsets in zip(questions, encoded["offset_mapping"])
    ]


def window_features(
    examples: dict[str, list],
    tokenizer: PreTrainedTokenizerBase,
    config: WindowConfig,
    with_labels: bool,
    with_postprocess_columns: bool,
) -> dict[str, list]:
    """Tokenize a batch of examples into overlapping windows over each context: question first, then a slice
    of the context, right-padded (see `check_qa_tokenizer`), whatever the special tokens and token types.

    One function for training, evaluation and prediction:
    - `with_labels`: start/end token positions of the first gold answer; the first token (position 0: [CLS],
      <s>) for unanswerable questions and for windows that do not contain the whole answer, so the model learns
      to abstain there.
    - `with_postprocess_columns`: the example id, token character offsets and the window's context token range,
      which post-processing needs to map logits back to answer text. A context token's offsets leave out any
      whitespace it starts with: sentencepiece-style tokens ("▁word", DeBERTa-v2, XLM-R) carry the space before
      the word, and an answer text must not begin with it.
    """
    questions = truncate_questions(examples["question"], tokenizer, config.max_query_length)
    contexts = examples["context"]
    encoded = tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=config.max_seq_length,
        stride=config.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length" if config.pad_to_max_length else False,
    )
    sample_map = encoded.pop("overflow_to_sample_mapping")
    offset_mapping = encoded.pop("offset_mapping")
    starts, ends, example_ids, context_starts, context_ends, window_offsets = [], [], [], [], [], []
    for i, offsets in enumerate(offset_mapping):
        sequence_ids = encoded.sequence_ids(i)
        context_start = sequence_ids.index(1)
        context_end = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
        sample = sample_map[i]
        context_starts.append(context_start)
        context_ends.append(context_end)
        example_ids.append(examples["id"][sample])
        if with_postprocess_columns:
            window_offsets.append(trimmed_offsets(offsets, contexts[sample], context_start, context_end))
        if not with_labels:
            continue
        answers = examples["answers"][sample]
        start_token = end_token = 0
        if answers["answer_start"]:
            start_char = answers["answer_start"][0]
            end_char = start_char + len(answers["text"][0])
            if offsets[context_start][0] <= start_char and offsets[context_end][1] >= end_char:
                start_token = context_start
                while start_token <= context_end and offsets[start_token][0] <= start_char:
                    start_token += 1
                start_token -= 1
                end_token = context_end
                while end_token >= context_start and offsets[end_token][1] >= end_char:
                    end_token -= 1
                end_token += 1
        starts.append(start_token)
        ends.append(end_token)
    if with_labels:
        encoded["start_positions"] = starts
        encoded["end_positions"] = ends
    if with_postprocess_columns:
        encoded["example_id"] = example_ids
        encoded["offset_mapping"] = window_offsets
        encoded["context_start"] = context_starts
        encoded["context_end"] = context_ends
    return dict(encoded)


def trimmed_offsets(
    offsets: list[tuple[int, int]], context: str, context_start: int, context_end: int
) -> list[list[int]]:
    """A window's token offsets, each context token's start moved past any whitespace it begins with."""
    trimmed = []
    for index, (start, end) in enumerate(offsets):
        if context_start <= index <= context_end:
            while start < end and context[start].isspace():
                start += 1
        trimmed.append([start, end])
    return trimmed


def build_windows(
    examples: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    config: WindowConfig,
    with_labels: bool,
    with_postprocess_columns: bool,
    num_proc: int | None = None,
    load_from_cache_file: bool = True,
    desc: str = "Windowing",
) -> Dataset:
    """`window_features` over a whole dataset through `datasets.map` (cached on disk by fingerprint)."""
    return examples.map(
        window_features,
        batched=True,
        remove_columns=examples.column_names,
        fn_kwargs={
            "tokenizer": tokenizer,
            "config": config,
            "with_labels": with_labels,
            "with_postprocess_columns": with_postprocess_columns,
        },
        num_proc=num_proc,
        load_from_cache_file=load_from_cache_file,
        desc=desc,
    )


def model_inputs(features: Dataset) -> Dataset:
    """The features without the post-processing columns: what the model and the data collator see."""
    return features.remove_columns([c for c in POSTPROCESS_COLUMNS if c in features.column_names])


def _token_offsets(features: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """All windows' token offsets as one (n_tokens, 2) array, and each window's first row in it."""
    column = features.select_columns(["offset_mapping"]).with_format("arrow")[:]["offset_mapping"]
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = column.flatten().flatten().to_numpy(zero_copy_only=False).astype(np.int64).reshape(-1, 2)
    row_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return flat, row_starts


@dataclass
class QAPredictions:
    """Post-processed output, keyed by example id, in example order."""

    predictions: dict[str, str]
    nbest: dict[str, list[dict[str, Any]]]
    null_odds: dict[str, float] = field(default_factory=dict)


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

    Per window, the `n_best_size` best start and end tokens (stable order on ties) are paired; a pair is a
    candidate when both tokens lie in the window's context, end >= start and the span has at most
    `max_answer_length` tokens. Each example keeps its `n_best_size` best candidates over all its windows
    (score = start logit + end logit). With negatives, the null score is the lowest first-token score over the
    example's windows; the null-odds are null score - best span score, and the answer is "" when they exceed
    `null_score_diff_threshold`.
    """
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    n_features, seq_len = start_logits.shape
    if n_features != len(features):
        raise ValueError(f"got logits for {n_features} windows but there are {len(features)} windows")
    example_ids = examples["id"]
    contexts = examples["context"]
    example_index = {example_id: i for i, example_id in enumerate(example_ids)}
    feature_example = np.fromiter((example_index[e] for e in features["example_id"]), dtype=np.int64, count=n_features)
    context_start = np.asarray(features["context_start"], dtype=np.int64)
    context_end = np.asarray(features["context_end"], dtype=np.int64)
    flat_offsets, row_starts = _token_offsets(features)

    k = min(n_best_size, seq_len)
    top_starts = np.argsort(-start_logits, axis=1, kind="stable")[:, :k]
    top_ends = np.argsort(-end_logits, axis=1, kind="stable")[:, :k]
    cand_start = np.broadcast_to(top_starts[:, :, None], (n_features, k, k))
    cand_end = np.broadcast_to(top_ends[:, None, :], (n_features, k, k))
    lo, hi = context_start[:, None, None], context_end[:, None, None]
    valid = (
        (cand_start >= lo) & (cand_start <= hi) & (cand_end >= lo) & (cand_end <= hi)
        & (cand_end >= cand_start) & (cand_end - cand_start + 1 <= max_answer_length)
    )
    # np.nonzero walks in C order: window, then start rank, then end rank, the order of a plain double loop.
    feat_idx, start_rank, end_rank = np.nonzero(valid)
    starts = top_starts[feat_idx, start_rank]
    ends = top_ends[feat_idx, end_rank]
    start_scores = start_logits[feat_idx, starts]
    end_scores = end_logits[feat_idx, ends]
    scores = start_scores + end_scores
    cand_example = feature_example[feat_idx]

    # Best n per example: sort by example, then score (descending), then the loop order (stable ties).
    order = np.lexsort((np.arange(len(scores)), -scores, cand_example))
    sorted_example = cand_example[order]
    group_first = np.searchsorted(sorted_example, sorted_example, side="left")
    keep = order[(np.arange(len(order)) - group_first) < n_best_size]

    char_start = flat_offsets[row_starts[feat_idx[keep]] + starts[keep], 0]
    char_end = flat_offsets[row_starts[feat_idx[keep]] + ends[keep], 1]

    null_scores = start_logits[:, 0] + end_logits[:, 0]
    min_null = np.full(len(example_ids), np.inf)
    np.minimum.at(min_null, feature_example, null_scores)
    # The window holding each example's lowest null score (the first such window on ties) supplies the null
    # entry's start/end logits.
    by_null = np.lexsort((np.arange(n_features), null_scores, feature_example))
    first_of_group = np.ones(n_features, dtype=bool)
    first_of_group[1:] = feature_example[by_null][1:] != feature_example[by_null][:-1]
    lowest_window = np.full(len(example_ids), -1)
    lowest_window[feature_example[by_null[first_of_group]]] = by_null[first_of_group]
    has_window = lowest_window >= 0
    null_start = np.where(has_window, start_logits[lowest_window, 0], 0.0)
    null_end = np.where(has_window, end_logits[lowest_window, 0], 0.0)

    nbest_lists: list[list[dict[str, Any]]] = [[] for _ in example_ids]
    for ex, cs, ce, s_logit, e_logit in zip(
        cand_example[keep].tolist(), char_start.tolist(), char_end.tolist(),
        start_scores[keep].tolist(), end_scores[keep].tolist(),
    ):
        nbest_lists[ex].append(
            {"text": contexts[ex][cs:ce], "offsets": [cs, ce], "start_logit": s_logit, "end_logit": e_logit,
             "score": s_logit + e_logit}
        )

    result = QAPredictions(predictions={}, nbest={})
    for ex, example_id in enumerate(example_ids):
        entries = nbest_lists[ex]
        best_span = entries[0] if entries else None
        if version_2_with_negative and has_window[ex]:
            null_entry = {"text": "", "offsets": [0, 0], "start_logit": float(null_start[ex]),
                          "end_logit": float(null_end[ex]), "score": float(min_null[ex])}
            entries = sorted(entries + [null_entry], key=lambda e: e["score"], reverse=True)
        _add_probabilities(entries)
        result.nbest[example_id] = entries
        if not version_2_with_negative:
            result.predictions[example_id] = best_span["text"] if best_span else ""
            continue
        odds = float(min_null[ex] - best_span["score"]) if best_span else float("inf")
        result.null_odds[example_id] = odds
        result.predictions[example_id] = "" if best_span is None or odds > null_score_diff_threshold else best_span["text"]
    return result


def _add_probabilities(entries: list[dict[str, Any]]) -> None:
    """Softmax of the n-best scores, stored on each entry."""
    if not entries:
        return
    scores = np.array([e["score"] for e in entries])
    weights = np.exp(scores - scores.max())
    for entry, probability in zip(entries, (weights / weights.sum()).tolist()):
        entry["probability"] = probability


@dataclass
class PostprocessConfig:
    version_2_with_negative: bool = False
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0


def metric_inputs(examples: Dataset, output: QAPredictions) -> tuple[list[dict], list[dict]]:
    """Predictions and references in the squad_v2 metric's input format."""
    predictions = [
        {"id": example_id, "prediction_text": text, "no_answer_probability": output.null_odds.get(example_id, 0.0)}
        for example_id, text in output.predictions.items()
    ]
    references = [{"id": example_id, "answers": answers} for example_id, answers in zip(examples["id"], examples["answers"])]
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


class QATrainer(Trainer):
    """The Trainer, except that evaluation and prediction batches always keep dataset order.

    With `--train_sampling_strategy group_by_length` this transformers release length-groups evaluation batches
    too, and QA post-processing matches logits to windows by position.
    """

    def _get_eval_sampler(self, eval_dataset):
        strategy = self.args.train_sampling_strategy
        if strategy != "group_by_length":
            return super()._get_eval_sampler(eval_dataset)
        self.args.train_sampling_strategy = "random"
        try:
            return super()._get_eval_sampler(eval_dataset)
        finally:
            self.args.train_sampling_strategy = strategy


def load_squad_v2_metric(**kwargs: Any) -> Any:
    """The local squad_v2 `evaluate` module (works offline). In memory, so parallel processes never share
    a cache file."""
    import evaluate

    return evaluate.load(METRIC_DIR, keep_in_memory=True, **kwargs)


def write_prediction_files(output_dir: str, prefix: str, output: QAPredictions) -> None:
    """`{prefix}_predictions.json`, `{prefix}_nbest_predictions.json` and, with negatives, `{prefix}_null_odds.json`."""
    write_json_atomic(os.path.join(output_dir, f"{prefix}_predictions.json"), output.predictions)
    write_json_atomic(os.path.join(output_dir, f"{prefix}_nbest_predictions.json"), output.nbest)
    if output.null_odds:
        write_json_atomic(os.path.join(output_dir, f"{prefix}_null_odds.json"), output.null_odds)

