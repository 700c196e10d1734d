#!/usr/bin/env python
"""Fine-tune and evaluate a BERT-family encoder for extractive question answering (SQuAD 2.0 style).

    python run_qa.py --model_name_or_path DIR --train_file train.json --validation_file dev.json \\
        --do_train --do_eval --output_dir out
    accelerate launch run_qa.py --dataset squad_v2 --model_name_or_path bert-base-uncased \\
        --do_train --do_eval --bf16 --output_dir out/squad_v2
    python run_qa.py --model_name_or_path out/squad_v2 --test_file questions.jsonl --do_predict --output_dir out/pred
    python run_qa.py config.json --learning_rate 5e-5   # arguments from a JSON/YAML file, flags override them

Long contexts are cut into overlapping windows; every window of every example is trained on, unanswerable
questions and windows without the answer included (target: the first token, [CLS] or <s>; --no_answer_loss_weight
weighs their loss). Evaluation maps the window logits back to text, scores them with the official SQuAD 2.0 metric
and also reports the evaluation loss.
Without --version_2_with_negative, a model may answer "no answer" when the training or evaluation data has
unanswerable questions, or, with neither (prediction only), when the model's qa_run_info.json says it was trained so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import datasets
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainingArguments,
    set_seed,
)

from qa_transfer.core.arguments import ModelArguments, ScriptArgumentParser, hub_options, parse_args_with_config
from qa_transfer.core.errors import ArgumentError, UsageError
from qa_transfer.core.packaged_models import resolve_model_path
from qa_transfer.core.plots import loss_curve_title, plot_loss_curve
from qa_transfer.core.precision import keep_head_in_fp32, precision_name
from qa_transfer.core.results_io import write_json_atomic
from qa_transfer.core.scripts import (
    OVERWRITE_OUTPUT_DIR_HELP,
    detect_last_checkpoint,
    run_script,
    save_run_arguments,
    setup_logging,
)
from qa_transfer.core.trainer import save_results
from qa_transfer.matrix.probes import randomize_answers
from qa_transfer.qa.arguments import QAEvalArguments, WindowConfig
from qa_transfer.qa.data import has_unanswerable, oversample_unanswerable, select_questions
from qa_transfer.qa.run_info import (
    RUN_INFO_FILE,
    default_version_2_with_negative,
    describe_source,
    recorded_version_2_with_negative,
)
from qa_transfer.qa.scores import load_squad_v2_metric
from qa_transfer.qa.training import QATrainer, qa_trainer
from qa_transfer.qa.windows import model_inputs, window_split
from qa_transfer.sources.adapters import ADAPTERS, StreamLimit, adapter_name, conversion_name, load_qa_split
from utils_qa import QAEvaluator, evaluate_qa, write_prediction_files

logger = logging.getLogger("qa_transfer.run_qa")


@dataclass
class DataTrainingArguments(QAEvalArguments):
    """Where the data comes from and how much of it, on top of the windowing and answer settings shared with
    cross_eval.py."""

    EXAMPLE_DIFFERENCES: ClassVar[dict[str, str]] = {
        **QAEvalArguments.EXAMPLE_DIFFERENCES,
        "max_train_samples": "--max_train_samples counts questions (all their windows are trained on), drawn as "
                             "--subset_strategy says; the transformers example keeps the first N windows",
    }

    dataset: str | None = field(
        default=None,
        metadata={"help": f"A named dataset ({', '.join(sorted(ADAPTERS))}) or its hub id (rajpurkar/squad_v2), "
                          "from the hub or --data_dir; another hub id: a SQuAD-format hub dataset.",
                  "aliases": ["--dataset_name"]},
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The hub dataset's configuration, for a hub id that is not a named dataset."}
    )
    data_dir: str | None = field(default=None, metadata={"help": "Folder with the named dataset's official files."})
    train_file: str | None = field(default=None, metadata={"help": "SQuAD-format JSON, or flat JSON/JSONL records."})
    validation_file: str | None = field(default=None, metadata={"help": "Evaluation file, same formats."})
    test_file: str | None = field(default=None, metadata={"help": "Questions to answer with --do_predict."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on at most this many questions."})
    train_fraction: float | None = field(default=None, metadata={"help": "Train on this fraction of the questions."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Predict at most this many questions."})
    oversample_unanswerable: int = field(
        default=1,
        metadata={"help": "Train on each unanswerable question this many times (after the subset is drawn), for "
                          "training data with far fewer unanswerable questions than the evaluation data."},
    )
    no_answer_loss_weight: float = field(
        default=1.0,
        metadata={"help": "In training, weigh the loss of each window without an answer (its target: the first "
                          "token) this many times a window with one: above 1 the model abstains more readily, "
                          "without repeating questions as --oversample_unanswerable does."},
    )
    repair_answer_offsets: bool = field(
        default=False, metadata={"help": "Fix an answer_start that misses its text when the text occurs once."}
    )
    random_label_fraction: float = field(
        default=0.0,
        metadata={"help": "Answer this seeded fraction of the answerable training questions by a random span of "
                          "their context with as many words (the random-label probe of Sen & Saffari, 2020)."},
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": OVERWRITE_OUTPUT_DIR_HELP})

    def __post_init__(self):
        super().__post_init__()
        if self.oversample_unanswerable < 1:
            raise ValueError(f"--oversample_unanswerable must be at least 1, got {self.oversample_unanswerable}")
        if not self.no_answer_loss_weight > 0:
            raise ValueError(f"--no_answer_loss_weight must be above 0, got {self.no_answer_loss_weight}")
        if not 0 <= self.random_label_fraction <= 1:
            raise ValueError(f"--random_label_fraction must be in [0, 1], got {self.random_label_fraction}")
        # A named dataset's hub id means the dataset itself (recorded by name in qa_run_info.json).
        self.dataset = adapter_name(self.dataset, self.dataset_config_name) or self.dataset


@dataclass
class QASplits:
    """The questions of each split asked for (None: not asked for), loaded and validated before anything is
    written."""

    train: datasets.Dataset | None = None
    eval: datasets.Dataset | None = None
    predict: datasets.Dataset | None = None


def parse_arguments(argv: list[str] | None) -> tuple[ModelArguments, DataTrainingArguments, TrainingArguments]:
    parser = ScriptArgumentParser(
        (ModelArguments, DataTrainingArguments, TrainingArguments), description=__doc__,
        first_screen=("model_name_or_path", "dataset", "train_file", "validation_file", "test_file", "do_train",
                      "do_eval", "do_predict", "output_dir"),
        own_help={"do_train": "Train on --train_file, or the --dataset's train split.",
                  "do_eval": "Evaluate on --validation_file, or the --dataset's validation split.",
                  "do_predict": "Answer the questions of --test_file.",
                  "output_dir": "Where the model, checkpoints, results and predictions are written.",
                  "train_sampling_strategy": "How training batches are drawn: group_by_length (the default here: "
                                             "windows of about the same length together, far less padding) or "
                                             "random (the Trainer's order)."},
    )
    # Length-grouped training batches: about half the padding, so training takes about half the time on a CPU, at
    # the same quality (docs/benchmarks.md); `--train_sampling_strategy random` is the Trainer's own order.
    model_args, data_args, training_args = parse_args_with_config(
        parser, argv, defaults={"train_sampling_strategy": "group_by_length"})
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise ArgumentError("nothing to do: pass --do_train, --do_eval and/or --do_predict")
    return model_args, data_args, training_args


def load_splits(model_args: ModelArguments, data_args: DataTrainingArguments,
                training_args: TrainingArguments) -> QASplits:
    """Every split that --do_train/--do_eval/--do_predict asks for, subsampled as asked; a QADataError names the
    file and record of any bad input."""

    def load_split(split: str, data_file: str | None, max_questions: int | None, require_answers: bool = True,
                   stream_questions: int | None = None) -> datasets.Dataset:
        # A hub stream stops once it has the questions asked for (NQ's train split alone is about 43 GB).
        examples = load_qa_split(
            split, dataset_name=data_args.dataset, data_file=data_file, data_dir=data_args.data_dir,
            cache_dir=model_args.cache_dir, require_answers=require_answers,
            repair_offsets=data_args.repair_answer_offsets,
            stream_limit=StreamLimit.for_subset(stream_questions, data_args.subset_strategy, training_args.seed),
            dataset_config=data_args.dataset_config_name, token=model_args.token,
        )
        fraction = data_args.train_fraction if split == "train" else None
        return select_questions(examples, max_questions, fraction, data_args.subset_strategy, training_args.seed)

    splits = QASplits()
    if training_args.do_train:
        # --train_fraction needs the whole split's size, so it streams the whole split.
        stream_questions = data_args.max_train_samples if data_args.train_fraction is None else None
        splits.train = load_split("train", data_args.train_file, data_args.max_train_samples,
                                  stream_questions=stream_questions)
        if data_args.random_label_fraction:
            splits.train, relabelled = randomize_answers(splits.train, data_args.random_label_fraction,
                                                         training_args.seed)
            logger.info("random labels: %d training questions answered by a random span", relabelled)
    if training_args.do_eval:
        splits.eval = load_split("validation", data_args.validation_file, data_args.max_eval_samples,
                                 stream_questions=data_args.max_eval_samples)
    if training_args.do_predict:
        if data_args.test_file is None:
            raise ArgumentError("--do_predict needs --test_file")
        splits.predict = load_split("test", data_args.test_file, data_args.max_predict_samples, require_answers=False)
    return splits


def choose_version_2_with_negative(model_args: ModelArguments, data_args: DataTrainingArguments,
                                   training_args: TrainingArguments, splits: QASplits) -> bool:
    """--version_2_with_negative if given; else "no answer" is allowed when the labelled data has unanswerable
    questions or (a fine-tuned model, not being trained) the model's own record says it was trained so."""
    if data_args.version_2_with_negative is not None:
        logger.info("version_2_with_negative = %s", data_args.version_2_with_negative)
        return data_args.version_2_with_negative
    recorded = None if training_args.do_train else recorded_version_2_with_negative(model_args.model_name_or_path)
    labelled = [split for split in (splits.train, splits.eval) if split is not None]
    data_has_unanswerable = any(has_unanswerable(split) for split in labelled)
    version_2 = default_version_2_with_negative(recorded, data_has_unanswerable)
    logger.info("version_2_with_negative = %s (unanswerable questions in the labelled data: %s; recorded in the "
                "model's %s: %s)", version_2, data_has_unanswerable if labelled else "no labelled data",
                RUN_INFO_FILE, recorded)
    return version_2


def load_model(
    model_args: ModelArguments, data_args: DataTrainingArguments
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, WindowConfig]:
    """The model, its tokenizer (packaged names resolved to their folders) and the windows that the tokenizer
    allows; a tokenizer that cannot window QA examples, or a --doc_stride too long for it, is a UsageError."""
    where = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision}
    model_path = resolve_model_path(model_args.model_name_or_path, **where)
    config_path = resolve_model_path(model_args.config_name, **where) if model_args.config_name else model_path
    tokenizer_path = resolve_model_path(model_args.tokenizer_name, **where) if model_args.tokenizer_name else model_path
    options = hub_options(model_args.cache_dir, model_args.model_revision, model_args.token,
                          model_args.trust_remote_code)
    config = AutoConfig.from_pretrained(config_path, **options)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, **options)
    try:
        windows = data_args.window_config(tokenizer)
    except ValueError as err:
        raise UsageError(f"{tokenizer_path}: {err}") from err
    model = AutoModelForQuestionAnswering.from_pretrained(model_path, config=config, **options)
    return model, tokenizer, windows


def run_info_record(model_args: ModelArguments, data_args: DataTrainingArguments, training_args: TrainingArguments,
                    splits: QASplits, train_windows: int, version_2: bool) -> dict[str, Any]:
    """qa_run_info.json: what this model was trained on and how; cross_eval.py labels its row by it."""
    validation_file = data_args.validation_file if training_args.do_eval else None
    return {
        "task": "question-answering",
        "dataset": data_args.dataset,
        "train_source": describe_source(data_args.dataset, data_args.train_file),
        "validation_source": describe_source(data_args.dataset, validation_file) if training_args.do_eval else None,
        # which rules made the data: the paper's conversion unless an alternative was named
        "train_conversion": conversion_name(data_args.dataset, data_args.train_file),
        "validation_conversion": conversion_name(data_args.dataset, validation_file) if training_args.do_eval else None,
        "train_samples": len(splits.train),
        "train_windows": train_windows,
        "base_model": model_args.model_name_or_path,
        "version_2_with_negative": version_2,
        "data_args": asdict(data_args),
        "training": {
            "learning_rate": training_args.learning_rate,
            "num_train_epochs": training_args.num_train_epochs,
            "max_steps": training_args.max_steps,
            "per_device_train_batch_size": training_args.per_device_train_batch_size,
            "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
            "world_size": training_args.world_size,
            "seed": training_args.seed,
            "bf16": training_args.bf16,
            "fp16": training_args.fp16,
            "precision": precision_name(training_args),
        },
    }


def main(argv: list[str] | None = None) -> None:
    # --- Parse, find a killed run's checkpoint, seed ---------------------------------------------------
    model_args, data_args, training_args = parse_arguments(argv)
    setup_logging(training_args, data_args)
    last_checkpoint = detect_last_checkpoint(training_args, data_args.overwrite_output_dir, model_args, data_args)
    set_seed(training_args.seed)

    # --- Load and validate every split before anything is written -----------------------------------
    splits = load_splits(model_args, data_args, training_args)
    version_2 = choose_version_2_with_negative(model_args, data_args, training_args, splits)
    model, tokenizer, windows = load_model(model_args, data_args)
    keep_head_in_fp32(model, training_args)

    # --- Preprocess: one windowing of every split -----------------------------------------------------
    training_questions = None
    if splits.train is not None:
        training_questions = oversample_unanswerable(splits.train, data_args.oversample_unanswerable)
    train_features = window_split(training_questions, tokenizer, windows, data_args, training_args,
                                  with_labels=True, with_postprocess_columns=False, desc="Windowing train")
    eval_features = window_split(splits.eval, tokenizer, windows, data_args, training_args,
                                 with_labels=True, with_postprocess_columns=True, desc="Windowing validation")
    predict_features = window_split(splits.predict, tokenizer, windows, data_args, training_args,
                                    with_labels=False, with_postprocess_columns=True, desc="Windowing test")

    metric = load_squad_v2_metric()
    postprocess = data_args.postprocess_config(version_2)
    trainer = qa_trainer(
        model, tokenizer, training_args, data_args.pad_to_max_length, QATrainer,
        train_dataset=train_features,
        # evaluations during training (--eval_strategy) score the questions too
        eval_dataset=None if eval_features is None else model_inputs(eval_features),
        compute_metrics=None if eval_features is None else QAEvaluator(splits.eval, eval_features, postprocess, metric),
        no_answer_loss_weight=data_args.no_answer_loss_weight,
    )
    save_run_arguments(training_args, model_args, data_args)

    # --- Train --------------------------------------------------------------------------------------
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
        trainer.save_model()
        save_results(trainer, "train", train_result.metrics | {"train_samples": len(splits.train),
                                                               "train_windows": len(train_features)})

    # --- Evaluate and predict: the evaluation every cross_eval.py cell runs too ------------------------
    evaluations = (("eval", splits.eval, eval_features), ("predict", splits.predict, predict_features))
    for split, examples, features in evaluations:
        if not getattr(training_args, f"do_{split}"):
            continue
        metrics, answers = evaluate_qa(trainer, examples, features, postprocess, metric, prefix=split)
        save_results(trainer, split, metrics)
        if trainer.is_world_process_zero():
            write_prediction_files(training_args.output_dir, split, answers)

    # --- Record what this model is, plot the losses, and say where the results are -------------------
    if trainer.is_world_process_zero() and training_args.do_train:
        run_info = run_info_record(model_args, data_args, training_args, splits, len(train_features), version_2)
        write_json_atomic(os.path.join(training_args.output_dir, RUN_INFO_FILE), run_info)
        title = loss_curve_title(model_args.model_name_or_path, data_args.train_file or data_args.dataset,
                                 (data_args.validation_file or data_args.dataset) if training_args.do_eval else None)
        plot_loss_curve(trainer.state.log_history, os.path.join(training_args.output_dir, "loss_curve.png"), title)
    if trainer.is_world_process_zero():
        # Printed, not logged, as run_classification.py does: the last line of the run says where its files are.
        print(f"All results: {os.path.join(training_args.output_dir, 'all_results.json')}")


if __name__ == "__main__":
    run_script(main)
