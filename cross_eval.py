#!/usr/bin/env python
"""Evaluate every fine-tuned QA model on every dataset: the generalisation matrix of Sen & Saffari (2020), Table 3.

    python cross_eval.py --models DIR
    python cross_eval.py --models DIR --datasets squad_v2 natural_questions --max_eval_samples 1000
    python cross_eval.py --models DIR --datasets squad_v2=dev-v2.0.json nq=nq_dev.jsonl --output_dir OUT
    accelerate launch cross_eval.py --models DIR --bf16 --per_device_eval_batch_size 128

Rows are the model directories under DIR that run_qa.py wrote, labelled by the dataset recorded in their
qa_run_info.json (`run_qa.py --dataset NAME`, also with local files), else by the folder name; the column of that
name is the row's in-domain cell. Columns are the evaluation datasets: names from the dataset adapters \
(hub, or --data_dir
NAME=DIR) or NAME=FILE pairs (SQuAD-format or flat JSON/JSONL). Each cell is computed by the same windowing,
post-processing and squad_v2 metric as `run_qa.py --do_eval`, and stored under OUT/cells/ as soon as it is done;
a rerun skips finished cells (--overwrite recomputes them). Outputs: matrix.json (every cell's metrics),
matrix.csv, matrix.md (with each cell's drop from its row's in-domain score) and heatmap.png, merged with the
ones an earlier run left there: rows and columns not evaluated now, and cells that fail now, keep their earlier
scores, marked "*". Exit status 1 when a model, a dataset or a cell failed; the other cells are still computed,
and a run that computes no cell at all leaves the reports as they were.

--probes NAME ... (qa_probes.py: shuffled_context, question_prefix:N, no_question, filler, negation) adds one
probed cell per (model, dataset), stored and resumed like the others; probes.md and probes.png show each probed
score and its change from the unprobed cell, and matrix.json holds them under "probes".

--analysis overlap (qa_overlap.py) scores each cell's answerable questions by their overlap with the sentence that
holds the answer (low / middle / high), and counts how often a model answers from the sentence that repeats the
question: overlap.json in each cell's folder (computed from the stored predictions, reused while the cell is
unchanged), analysis.json, analysis.md and overlap.png, merged with an earlier run's like the matrix.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import datasets
from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer, TrainingArguments

from qa_transfer.core.arguments import (
    EVALUATION_FLAGS,
    ScriptArgumentParser,
    hub_options,
    parse_args_with_config,
    token_field,
    trust_remote_code_field,
)
from qa_transfer.core.errors import ArgumentError, UsageError
from qa_transfer.core.precision import keep_head_in_fp32, precision_name
from qa_transfer.core.results_io import read_json, write_json_atomic
from qa_transfer.core.scripts import parse_name_value_pairs, run_script, setup_logging
from qa_transfer.matrix.overlap import ANALYSES, write_overlap_analysis
from qa_transfer.matrix.probes import PROBES_VERSION, apply_probe, parse_probe
from qa_transfer.matrix.report import (
    EvalColumn,
    ModelRow,
    cell_dir_of,
    cell_value,
    write_matrix,
)
from qa_transfer.qa.arguments import QAEvalArguments
from qa_transfer.qa.data import has_unanswerable, select_questions
from qa_transfer.qa.run_info import PAPER_DATASETS, RUN_INFO_FILE, default_version_2_with_negative, describe_source
from qa_transfer.qa.scores import ANSWER_ALWAYS, attach_intervals, load_squad_v2_metric
from qa_transfer.qa.training import qa_trainer
from qa_transfer.qa.windows import window_split
from qa_transfer.sources.adapters import ADAPTERS, StreamLimit, adapter_name, conversion_name, load_qa_split
from utils_qa import evaluate_qa, write_prediction_files

logger = logging.getLogger("qa_transfer.cross_eval")

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
CELL_FILE = "metrics.json"  # written last in a cell's folder: its presence marks the cell finished
SQUAD_V2_FIGURES = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")
# Under the SQuAD 2.0 rules (abstain where the null score wins), and answer-always (the best non-empty span).
METRIC_CHOICES = (*SQUAD_V2_FIGURES, "best_exact", "best_f1", *(ANSWER_ALWAYS + name for name in SQUAD_V2_FIGURES))


@dataclass
class CrossEvalArguments:
    models: str = field(
        metadata={"help": "Folder of model directories written by run_qa.py (or one such directory).",
                  "aliases": ["--model_name_or_path"]}
    )
    datasets: list[str] = field(
        default_factory=lambda: list(PAPER_DATASETS),
        metadata={"help": f"Evaluation sets: names ({', '.join(sorted(ADAPTERS))}) or their hub ids, other hub ids "
                          "(SQuAD-format hub datasets), and/or NAME=FILE pairs.", "aliases": ["--dataset_name"]},
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The configuration of the hub datasets in --datasets that are not named ones."}
    )
    data_dir: list[str] = field(
        default_factory=list, metadata={"help": "NAME=DIR pairs: read a named dataset's official files from DIR."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where hub datasets are cached."})
    token: str | None = token_field()
    trust_remote_code: bool = trust_remote_code_field()
    metric: str = field(
        default="f1",
        metadata={"help": f"Score shown first in matrix.csv/.md and heatmap.png: {', '.join(METRIC_CHOICES)}. Under "
                          "the SQuAD 2.0 rules a question is not answered where the null score wins; the "
                          f"{ANSWER_ALWAYS}* figures score each question's best non-empty span instead."},
    )
    overwrite: bool = field(default=False, metadata={"help": "Recompute cells that are already stored."})
    bootstrap_resamples: int = field(
        default=1000,
        metadata={"help": "Resamples of each cell's questions (seeded by --seed) for its confidence intervals."},
    )
    confidence: float = field(default=0.95, metadata={"help": "The intervals' confidence level."})
    probes: list[str] = field(
        default_factory=list,
        metadata={"help": "Robustness probes (Sen & Saffari 2020, sections 4-5), each evaluated on every dataset as "
                          "well: shuffled_context, question_prefix:N, no_question, filler[:WORD], negation."},
    )
    analysis: list[str] = field(
        default_factory=list,
        metadata={"help": "Analyses of the evaluated cells, from their stored predictions: overlap (scores by "
                          "question-context overlap, and answers from the sentence that repeats the question)."},
    )

    def __post_init__(self):
        # A named dataset's hub id means the dataset itself (its column is labelled by the name).
        self.datasets = [adapter_name(item, self.dataset_config_name) or item for item in self.datasets]
        if self.metric not in METRIC_CHOICES:
            raise ValueError(f"--metric must be one of {', '.join(METRIC_CHOICES)}, not {self.metric!r}")
        if self.bootstrap_resamples < 1:
            raise ValueError(f"--bootstrap_resamples must be at least 1, got {self.bootstrap_resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"--confidence must be between 0 and 1, got {self.confidence}")
        for spec in self.probes:
            parse_probe(spec)  # a ProbeError (ValueError) names a bad one
        if len(set(self.probes)) < len(self.probes):
            raise ValueError("--probes names a probe twice")
        unknown = [name for name in self.analysis if name not in ANALYSES]
        if unknown:
            raise ValueError(f"--analysis takes {', '.join(ANALYSES)}, not {', '.join(map(repr, unknown))}")


# --- Discovery ----------------------------------------------------------------------------------------


def inspect_model_dir(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """(run info, None) for a usable QA model directory, (None, reason) for a broken one, (None, None) for a
    folder that is not a model at all."""
    run_info_path = os.path.join(path, RUN_INFO_FILE)
    has_run_info = os.path.isfile(run_info_path)
    if not os.path.isfile(os.path.join(path, "config.json")):
        return None, ("no config.json (did training finish?)" if has_run_info else None)
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as err:  # any unreadable config makes the directory unusable; say why
        return None, f"config.json does not load: {err}"
    architectures = config.architectures or []
    if not any(name.endswith("ForQuestionAnswering") for name in architectures):
        return None, f"no question-answering head (architectures: {', '.join(architectures) or 'none recorded'})"
    if not any(os.path.isfile(os.path.join(path, name)) for name in WEIGHT_FILES):
        return None, "no model weights (model.safetensors or pytorch_model.bin)"
    if not any(os.path.isfile(os.path.join(path, name))
               for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")):
        return None, "no tokenizer files"
    if not has_run_info:
        return {}, None
    try:
        return read_json(run_info_path), None
    except ValueError as err:
        return None, f"{RUN_INFO_FILE} is not valid JSON: {err}"


def discover_models(
    models_dir: str, output_dir: str, column_names: list[str]
) -> tuple[list[ModelRow], list[tuple[str, str]]]:
    """The usable model directories under `models_dir` (or `models_dir` itself), and (path, reason) for the
    unusable ones. Folders that are not models (no config.json, no qa_run_info.json) are passed over. Rows come
    in the order of their in-domain columns, so the in-domain cells form the diagonal."""
    if not os.path.isdir(models_dir):
        raise UsageError(f"--models {models_dir}: no such directory")
    if (os.path.isfile(os.path.join(models_dir, "config.json"))
            or os.path.isfile(os.path.join(models_dir, RUN_INFO_FILE))):
        candidates = [models_dir]
    else:
        candidates = [
            os.path.join(models_dir, name) for name in sorted(os.listdir(models_dir))
            if not name.startswith(".") and os.path.isdir(os.path.join(models_dir, name))
            and os.path.abspath(os.path.join(models_dir, name)) != os.path.abspath(output_dir)
        ]
    rows: list[ModelRow] = []
    skipped: list[tuple[str, str]] = []
    for path in candidates:
        run_info, reason = inspect_model_dir(path)
        if reason is not None:
            skipped.append((path, reason))
        elif run_info is None:
            logger.info("passing over %s: not a model directory", path)
        else:
            dataset = run_info.get("dataset")
            if not run_info:
                logger.warning("%s has no %s (not written by run_qa.py --do_train): its row is labelled by its folder "
                               "name", path, RUN_INFO_FILE)
            # Without a recorded dataset the folder name labels the row (fine_tune_all.py names folders by dataset).
            folder = os.path.basename(os.path.normpath(path))
            rows.append(ModelRow(dataset or folder, path, dataset or folder, run_info))
    # Two models fine-tuned on the same dataset keep apart by their folder names.
    labels = [row.label for row in rows]
    for row in rows:
        if labels.count(row.label) > 1:
            row.label = f"{row.label}:{os.path.basename(os.path.normpath(row.path))}"
    order = {name: i for i, name in enumerate(dict.fromkeys(column_names + PAPER_DATASETS))}
    rows.sort(key=lambda row: (order.get(row.fine_tuned_on, len(order)), row.label))
    return rows, skipped


# --- Evaluation data ----------------------------------------------------------------------------------


def dataset_specs(items: list[str]) -> list[tuple[str, str | None]]:
    """--datasets as (name, file or None) pairs, in order; a name given twice is an ArgumentError."""
    specs = []
    for item in items:
        name, _, data_file = item.partition("=")
        if any(other == name for other, _ in specs):
            raise ArgumentError(f"--datasets names {name!r} twice")
        specs.append((name, data_file or None))
    return specs


def load_columns(
    specs: list[tuple[str, str | None]], args: CrossEvalArguments, eval_args: QAEvalArguments, seed: int
) -> list[EvalColumn]:
    """Every evaluation set, loaded and validated up front; a set that cannot be loaded keeps its error."""
    data_dirs = parse_name_value_pairs(args.data_dir, "--data_dir")
    columns: list[EvalColumn] = []
    for name, data_file in specs:
        column = EvalColumn(name, describe_source(name, data_file))
        columns.append(column)
        if data_file is not None and not os.path.isfile(data_file):
            column.error = f"{data_file}: no such file"
            continue
        try:
            examples = load_qa_split(
                "validation", dataset_name=name, data_file=data_file,
                data_dir=data_dirs.get(name), cache_dir=args.cache_dir,
                stream_limit=StreamLimit.for_subset(eval_args.max_eval_samples, eval_args.subset_strategy, seed),
                dataset_config=args.dataset_config_name, token=args.token,
            )
        except Exception as err:  # hub, network, format: the column fails, the others run
            column.error = f"{type(err).__name__}: {err}"
            if data_file is None and name in ADAPTERS and name not in data_dirs:  # the advice names run_qa.py's flags
                column.error += f" (here: --data_dir {name}=DIR, or --datasets {name}=FILE)"
            continue
        column.conversion = conversion_name(name, data_file)
        column.examples = select_questions(examples, eval_args.max_eval_samples, None, eval_args.subset_strategy, seed)
        column.has_unanswerable = has_unanswerable(column.examples)
    return columns


def probe_columns(columns: list[EvalColumn], probes: list[str], seed: int) -> list[EvalColumn]:
    """One probed column per (probe, evaluation set): the set transformed by the probe, seeded by `seed`."""
    probed: list[EvalColumn] = []
    for probe in probes:
        for column in columns:
            name = f"{column.name}+{probe}"
            if column.error:
                probed.append(EvalColumn(name, column.source, conversion=column.conversion, error=column.error,
                                     probe=probe, unprobed=column.name))
                continue
            examples = apply_probe(column.examples, probe, seed)
            error = None if len(examples) else f"the {probe} probe leaves no question of {column.name}"
            probed.append(EvalColumn(name, column.source, examples if len(examples) else None,
                                     conversion=column.conversion, has_unanswerable=has_unanswerable(examples),
                                     error=error, probe=probe, unprobed=column.name))
    return probed


# --- Cells --------------------------------------------------------------------------------------------


def cell_settings(row: ModelRow, column: EvalColumn, eval_args: QAEvalArguments, seed: int) -> dict[str, Any]:
    """What a stored cell was computed from: a stored cell with other settings is computed again."""
    weights = [os.path.join(row.path, name) for name in WEIGHT_FILES if os.path.isfile(os.path.join(row.path, name))]
    return {
        "model_dir": os.path.abspath(row.path),
        "model_weights_mtime": max(os.path.getmtime(path) for path in weights),
        "dataset_source": column.source,
        "dataset_conversion": column.conversion,
        **({"probe": column.probe, "probes_version": PROBES_VERSION} if column.probe else {}),
        "seed": seed,
        **{key: value for key, value in asdict(eval_args).items()
           if key not in ("preprocessing_num_workers", "overwrite_cache")},
    }


def stored_cell(cell_dir: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    path = os.path.join(cell_dir, CELL_FILE)
    if not os.path.isfile(path):
        return None
    try:
        cell = read_json(path)
    except ValueError:
        return None
    if cell.get("settings") != settings:
        logger.info("%s was computed with other settings: computing it again", cell_dir)
        return None
    return cell


class CellEvaluator:
    """Computes cells exactly as `run_qa.py --do_eval` evaluates: owns the squad_v2 metric, the windows of each
    evaluation set, and the model of the row being evaluated, which it loads when that row's first cell needs
    computing (a row whose cells are all stored loads nothing)."""

    def __init__(self, args: CrossEvalArguments, eval_args: QAEvalArguments, training_args: TrainingArguments):
        self.args, self.eval_args, self.training_args = args, eval_args, training_args
        self.metric = load_squad_v2_metric()
        # Windows depend on the tokenizer, not the model: rows that share a tokenizer share them.
        self.windows: dict[tuple[str, str], datasets.Dataset] = {}
        self.row: ModelRow | None = None  # the row whose model, tokenizer and window settings are loaded
        self.model = self.tokenizer = self.window_config = None
        self.tokenizer_key = ""

    def load(self, row: ModelRow) -> None:
        """The row's tokenizer and model, unless loaded already; one that fails to load is tried again by the
        row's next cell."""
        if self.row is row:
            return
        self.row = self.model = self.tokenizer = None  # the previous row's model goes before the next one loads
        options = hub_options(self.args.cache_dir, token=self.args.token, trust_remote_code=self.args.trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(row.path, **options)
        window_config = self.eval_args.window_config(tokenizer)  # a ValueError for a tokenizer QA cannot use
        tokenizer_key = tokenizer.backend_tokenizer.to_str()
        model = AutoModelForQuestionAnswering.from_pretrained(row.path, **options)
        keep_head_in_fp32(model, self.training_args)
        self.row, self.model, self.tokenizer = row, model, tokenizer
        self.window_config, self.tokenizer_key = window_config, tokenizer_key

    def windows_of(self, column: EvalColumn) -> datasets.Dataset:
        """The column's windows under the loaded tokenizer, made once."""
        key = (self.tokenizer_key, column.name)
        if key not in self.windows:
            self.windows[key] = window_split(
                column.examples, self.tokenizer, self.window_config, self.eval_args, self.training_args,
                with_labels=True, with_postprocess_columns=True, desc=f"Windowing {column.name}")
        return self.windows[key]

    def evaluate(self, row: ModelRow, column: EvalColumn, cell_dir: str, settings: dict[str, Any],
                 progress: str) -> dict[str, Any]:
        """One model on one dataset: the cell, stored in `cell_dir` with the `settings` it was computed from."""
        self.load(row)
        features = self.windows_of(column)
        examples, eval_args, training_args = column.examples, self.eval_args, self.training_args
        version_2 = eval_args.version_2_with_negative
        if version_2 is None:
            version_2 = default_version_2_with_negative(row.run_info.get("version_2_with_negative"),
                                                        column.has_unanswerable)
        logger.info("%s: %d questions, %d windows", progress, len(examples), len(features))

        trainer = qa_trainer(self.model, self.tokenizer, training_args, eval_args.pad_to_max_length)
        start = time.perf_counter()
        results, answers = evaluate_qa(trainer, examples, features, eval_args.postprocess_config(version_2),
                                       self.metric)
        seconds = time.perf_counter() - start
        metrics = {key.removeprefix("eval_"): value for key, value in results.items()}
        cell = {"model": row.label, "dataset": column.name, "version_2_with_negative": version_2,
                "precision": precision_name(training_args), "seconds": round(seconds, 2), "metrics": metrics,
                "settings": settings}
        if trainer.is_world_process_zero():
            # Predictions first, metrics.json last: a cell counts as finished only once everything is written.
            write_prediction_files(cell_dir, "eval", answers)
            attach_intervals(cell, cell_dir, examples, self.args.bootstrap_resamples, self.args.confidence,
                             training_args.seed)
            write_json_atomic(os.path.join(cell_dir, CELL_FILE), cell)
        logger.info("%s: exact %.2f, f1 %.2f in %.1f s", progress, metrics["exact"], metrics["f1"], seconds)
        return cell


def parse_arguments(argv: list[str] | None) -> tuple[CrossEvalArguments, QAEvalArguments, TrainingArguments]:
    parser = ScriptArgumentParser(
        (CrossEvalArguments, QAEvalArguments, TrainingArguments), description=__doc__,
        trainer_flags_shown=EVALUATION_FLAGS,
        trainer_note="The Trainer flags that change an evaluation; the other TrainingArguments flags are accepted "
                     "and do nothing here. ",
        first_screen=("models", "datasets", "output_dir"),
        own_help={"output_dir": "Where matrix.json/.csv/.md, heatmap.png and cells/ are written "
                                "(default: MODELS/cross_eval, MODELS being --models)."},
    )
    return parse_args_with_config(
        parser, argv, derived_defaults={"output_dir": lambda options: os.path.join(options.models, "cross_eval")})


@dataclass
class CellRun:
    """What evaluating the cells produced: every cell (or its error) by row label and column name, and counts."""

    cells: dict[str, dict[str, Any]]
    computed: int = 0
    reused: int = 0
    failures: list[str] = field(default_factory=list)


def evaluate_cells(rows: list[ModelRow], columns: list[EvalColumn], args: CrossEvalArguments,
                   eval_args: QAEvalArguments, training_args: TrainingArguments) -> CellRun:
    """Each (model, column) cell: reused when stored with the same settings, else computed and stored. A cell (or a
    model) that fails records its error and the others go on. Columns come unprobed first: the probed ones
    compare with them."""
    seed = training_args.seed
    evaluator = CellEvaluator(args, eval_args, training_args)
    run = CellRun({row.label: {} for row in rows})
    total = len(rows) * len(columns)
    position = 0
    for row in rows:
        for column in columns:
            position += 1
            progress = f"[cell {position}/{total}] {row.label} -> {column.name}"
            cell_dir = cell_dir_of(training_args.output_dir, row, column.name)
            if column.error:
                run.cells[row.label][column.name] = {"error": column.error}
                continue
            settings = cell_settings(row, column, eval_args, seed)
            cell = None if args.overwrite else stored_cell(cell_dir, settings)
            if cell is not None:
                logger.info("%s: stored, %s %.2f", progress, args.metric, cell_value(cell["metrics"], args.metric))
                # Intervals of other bootstrap settings (or none, from an older release) need no model run.
                if training_args.process_index == 0 and attach_intervals(
                        cell, cell_dir, column.examples, args.bootstrap_resamples, args.confidence, seed):
                    write_json_atomic(os.path.join(cell_dir, CELL_FILE), cell)
                run.cells[row.label][column.name] = cell
                run.reused += 1
                continue
            try:
                cell = evaluator.evaluate(row, column, cell_dir, settings, progress)
            except Exception as err:  # one broken cell (or model) must not stop the others
                message = f"cell {row.label} -> {column.name}: {type(err).__name__}: {err}"
                logger.error("%s", message)
                run.failures.append(message)
                run.cells[row.label][column.name] = {"error": f"{type(err).__name__}: {err}"}
                continue
            run.cells[row.label][column.name] = cell
            run.computed += 1
    return run


def main(argv: list[str] | None = None) -> int:
    # --- Parse ---------------------------------------------------------------------------------------
    args, eval_args, training_args = parse_arguments(argv)
    output_dir = training_args.output_dir
    setup_logging(training_args, eval_args)
    seed = training_args.seed

    # --- Discover the models and load every evaluation set ------------------------------------------
    specs = dataset_specs(args.datasets)
    rows, skipped = discover_models(args.models, output_dir, [name for name, _ in specs])
    columns = load_columns(specs, args, eval_args, seed)
    probed = probe_columns(columns, args.probes, seed)
    failures = [f"model {path}: skipped: {reason}" for path, reason in skipped]
    failures += [f"dataset {column.name}: {column.error}" for column in columns if column.error]
    for line in failures:
        logger.error("%s", line)
    if not rows:
        raise UsageError(f"no usable model directory under {args.models}")
    logger.info("models: %s", ", ".join(f"{row.label} ({row.path})" for row in rows))
    logger.info("datasets: %s", ", ".join(f"{c.name} ({len(c.examples)} questions)" for c in columns
                                          if c.examples is not None) or "none could be loaded")
    for column in probed:
        if column.examples is not None:
            logger.info("probe %s: %d questions", column.name, len(column.examples))
        else:
            logger.warning("probe %s: %s", column.name, column.error)

    # --- Evaluate each cell that is not stored yet --------------------------------------------------
    run = evaluate_cells(rows, columns + probed, args, eval_args, training_args)
    failures += run.failures

    # --- Write the matrix: this run's cells merged with the reports already there ---------------------
    total = len(rows) * (len(columns) + len(probed))
    failed_cells = sum("error" in cell for row_cells in run.cells.values() for cell in row_cells.values())
    summary = (f"{run.computed} cell(s) computed, {run.reused} reused from {os.path.join(output_dir, 'cells')}, "
               f"{failed_cells} failed, of {total}; {len(skipped)} model folder(s) skipped, "
               f"{sum(bool(c.error) for c in columns)} dataset(s) not loaded")
    if run.computed + run.reused == 0:
        logger.error("%s. Nothing was computed, so the reports in %s are left as they were.", summary, output_dir)
        return 1
    if training_args.process_index == 0:
        write_matrix(output_dir, rows, columns, probed, run.cells, args.metric, failures)
        if "overlap" in args.analysis:
            failures += write_overlap_analysis(output_dir, rows, columns, run.cells)
    if failures:
        logger.error("%s.", summary)
        return 1
    logger.info("%s.", summary)
    return 0


if __name__ == "__main__":
    run_script(main)
