"""The model inputs of a classification split, one path in training and in prediction: cleaned and lemmatized
text, token ids, and the collator that pads them."""

from __future__ import annotations

from typing import Any

from datasets import Dataset
from transformers import DataCollatorWithPadding, TrainingArguments, default_data_collator

from qa_transfer.classification.data import LABEL_IDS_COLUMN
from qa_transfer.classification.tweets import PREPROCESSED_TEXT_COLUMN, preprocess_dataset


def tokenized_splits(
    preprocessed: dict[str, Dataset], tokenizer: Any, max_seq_length: int, pad_to_max_length: bool, **map_options: Any
) -> dict[str, Dataset]:
    """The model inputs of each preprocessed split: token ids (and label ids where the split has them)."""

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(
            batch[PREPROCESSED_TEXT_COLUMN],
            padding="max_length" if pad_to_max_length else False,
            max_length=max_seq_length,
            truncation=True,
        )

    model_inputs = {}
    for split, dataset in preprocessed.items():
        model_inputs[split] = dataset.map(
            tokenize,
            batched=True,
            remove_columns=[column for column in dataset.column_names if column != LABEL_IDS_COLUMN],
            desc=f"Tokenizing the {split} split",
            **map_options,
        )
    return model_inputs


def preprocess_splits(
    raw_datasets: dict[str, Dataset], tokenizer: Any, training_args: TrainingArguments, text_column: str,
    clean_text: bool, lemmatize: bool, max_seq_length: int, pad_to_max_length: bool, **map_options: Any,
) -> tuple[dict[str, Dataset], dict[str, Dataset]]:
    """One preprocessing path for every split, in training and in prediction (`inference.TweetClassifier`): clean /
    lemmatize, then tokenize to at most `max_seq_length` tokens (both cached by datasets); returns the preprocessed
    splits and the model inputs."""
    with training_args.main_process_first(desc="dataset preprocessing"):
        preprocessed = {
            split: preprocess_dataset(dataset, text_column, clean=clean_text, lemmatize=lemmatize, **map_options)
            for split, dataset in raw_datasets.items()
        }
        max_seq_length = min(max_seq_length, tokenizer.model_max_length)
        model_inputs = tokenized_splits(preprocessed, tokenizer, max_seq_length, pad_to_max_length, **map_options)
    return preprocessed, model_inputs


def classification_collator(tokenizer: Any, pad_to_max_length: bool, pad_to_multiple_of: int | None = None) -> Any:
    """Texts already padded with --pad_to_max_length; otherwise each batch padded to its own longest text (rounded
    up to `pad_to_multiple_of`, if given)."""
    return default_data_collator if pad_to_max_length else DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=pad_to_multiple_of)
