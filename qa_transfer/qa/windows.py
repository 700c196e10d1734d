"""QA windows: a (question, context) pair cut into overlapping model inputs with their labels and the columns
post-processing maps answers back with; the collator, and the windowing of a whole split with a run's flags (the
flags, the window settings and the tokenizer check are qa/arguments.py's). Training, evaluation and every
cross_eval.py cell window through here.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase, TrainingArguments, default_data_collator

from qa_transfer.core.compilation import padding_multiple
from qa_transfer.qa.arguments import QAEvalArguments, WindowConfig

# Feature columns that post-processing needs but the model must not see.
POSTPROCESS_COLUMNS = ["example_id", "offset_mapping", "context_start", "context_end"]


def qa_data_collator(tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool, training_args: TrainingArguments):
    """Windows are already padded with --pad_to_max_length; otherwise pad each batch to its longest window
    (to a multiple of 8 under mixed precision, for tensor cores; of 64 under --torch_compile, for few shapes)."""
    if pad_to_max_length:
        return default_data_collator
    mixed = training_args.fp16 or training_args.bf16
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=padding_multiple(training_args, 8 if mixed else None))


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
    of the context, right-padded (see `qa.arguments.check_qa_tokenizer`), whatever the special tokens and token types.

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
    with gc_paused():  # hundreds of small offset lists per window
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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that cannot form cycles (otherwise it
    rescans them all, again and again, as their number grows)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def window_split(
    examples: Dataset | None,
    tokenizer: PreTrainedTokenizerBase,
    config: WindowConfig,
    flags: QAEvalArguments,
    training_args: TrainingArguments,
    with_labels: bool,
    with_postprocess_columns: bool,
    desc: str,
) -> Dataset | None:
    """`build_windows` of one split with a run's flags (their preprocessing_num_workers and overwrite_cache), the
    main process first so that the other processes of a distributed run read its cache; None for a split that is
    not there. An evaluation or prediction split (`with_postprocess_columns`) comes longest window first (see
    `longest_first`)."""
    if examples is None:
        return None
    with training_args.main_process_first(desc=desc):  # the reordering writes a cache file too
        features = build_windows(
            examples, tokenizer, config, with_labels=with_labels, with_postprocess_columns=with_postprocess_columns,
            num_proc=flags.preprocessing_num_workers, load_from_cache_file=not flags.overwrite_cache, desc=desc,
        )
        return longest_first(features) if with_postprocess_columns and not config.pad_to_max_length else features


def longest_first(features: Dataset) -> Dataset:
    """The windows from the longest to the shortest (stable: a question's windows of one length keep their order).
    Evaluation batches then hold windows of about one length and pad little, where in the questions' order a batch
    pads every short window to its longest one. Post-processing maps each window to its question by example_id,
    and the predictions come back in this same order, so the answers do not change."""
    lengths = np.array([len(ids) for ids in features["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    if (order == np.arange(len(order))).all():
        return features
    return features.select(order).flatten_indices()
