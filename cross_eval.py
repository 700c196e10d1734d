#!/usr/bin/env python
"""Evaluate every fine-tuned QA model on every dataset: the generalisation matrix of Sen & Saffari (2020), Table 3.

    python cross_eval.py --models DIR
    python cross_eval.py --models DIR --datasets squad_v2 natural_questions --max_eval_samples 1000
    python cross_eval.py --models DIR --datasets squad_v2=dev-v2.0.json nq=nq_dev.jsonl --output_dir OUT
    accelerate launch cross_eval.py --models DIR --bf16 --per_device_eval_batch_size 128

Rows are the model directories under DIR that run_qa.py wrote, labelled by the dataset recorded in their
qa_run_info.json (`run_qa.py --dataset NAME`, also with local files), else by the folder name; the column of that
name is the row's in-domain cell. Columns are the evaluation datasets: names from the dataset adapters (hub, or --data_dir
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

import csv
import io
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import datasets
import numpy as np
from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer, TrainingArguments

from qa_transfer.base_trainer import BaseTrainer
from qa_transfer.dataset_columns import arrow_columns
from qa_transfer.errors import ArgumentError, UsageError
from qa_transfer.plots import plot_heatmap, plot_probe_changes
from qa_transfer.precision import keep_head_in_fp32, precision_name
from qa_transfer.qa_adapters import ADAPTERS, StreamLimit, adapter_name, conversion_name, load_qa_split
from qa_transfer.qa_data import has_unanswerable, select_questions
from qa_transfer.qa_overlap import ANALYSES, ANALYSIS_FILE, OverlapAnalysis, write_analysis_reports
from qa_transfer.qa_probes import PROBES_VERSION, apply_probe, parse_probe
from qa_transfer.qa_run_info import PAPER_DATASETS, RUN_INFO_FILE, default_version_2_with_negative, describe_source
from qa_transfer.qa_scores import load_squad_v2_metric, question_scores, score_intervals
from qa_transfer.results_io import read_json, write_json_atomic, write_text_atomic
from qa_transfer.script_args import (
    EVALUATION_FLAGS,
    ScriptArgumentParser,
    hub_options,
    parse_args_with_config,
    token_field,
    trust_remote_code_field,
)
from qa_transfer.script_utils import parse_name_value_pairs, run_script, setup_logging
from utils_qa import (
    QAEvalArguments,
    QAEvaluator,
    WindowConfig,
    build_windows,
    model_inputs,
    qa_data_collator,
    write_prediction_files,
)

logger = logging.getLogger("qa_transfer.cross_eval")

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
CELL_FILE = "metrics.json"  # written last in a cell's folder: its presence marks the cell finished
SCORES_FILE = "eval_scores.json"  # each question's exact match and F1 (0-1), and whether it has an answer
METRIC_CHOICES = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1")


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
    metric: str = field(default="f1", metadata={"help": f"Score shown in matrix.csv/.md and the heatmap: {', '.join(METRIC_CHOICES)}."})
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


@dataclass
class ModelRow:
    label: str
    path: str
    fine_tuned_on: str  # the dataset recorded in qa_run_info.json, else the folder name: its column is in-domain
    run_info: dict[str, Any]


@dataclass
class EvalColumn:
    name: str
    source: str
    examples: datasets.Dataset | None = None
    conversion: str | None = None  # the rules that made the set (qa_adapters.conversion_name)
    has_unanswerable: bool = False
    error: str | None = None
    probe: str | None = None  # a probed column: the probe, and the column it transforms
    unprobed: str | None = None


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
    if not any(os.path.isfile(os.path.join(path, name)) for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")):
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
    if os.path.isfile(os.path.join(models_dir, "config.json")) or os.path.isfile(os.path.join(models_dir, RUN_INFO_FILE)):
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


def cell_value(metrics: dict[str, Any], metric: str) -> float:
    """The score shown for a cell; on a set without unanswerable questions HasAns_x is x."""
    if metric in metrics:
        return float(metrics[metric])
    if metric.startswith("HasAns_") and "NoAns_total" not in metrics and metric[len("HasAns_"):] in metrics:
        return float(metrics[metric[len("HasAns_"):]])
    return math.nan


def safe_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def cell_dir_of(output_dir: str, row: ModelRow, column_name: str) -> str:
    return os.path.join(output_dir, "cells", safe_name(row.label), safe_name(column_name))


# --- Reports ------------------------------------------------------------------------------------------


def run_report(rows: list[ModelRow], columns: list[EvalColumn], cells: dict, metric: str,
               failures: list[str], probes: dict | None = None) -> dict[str, Any]:
    """This run's matrix.json: its rows, columns, cells and failures, and the probe results `probes`, if any."""
    return {
        "metric": metric,
        "rows": [row.label for row in rows],
        "columns": [column.name for column in columns],
        "models": {row.label: {"dir": os.path.abspath(row.path), "fine_tuned_on": row.fine_tuned_on,
                               "train_source": row.run_info.get("train_source"),
                               "conversion": row.run_info.get("train_conversion"),
                               "train_samples": row.run_info.get("train_samples"),
                               "base_model": row.run_info.get("base_model"),
                               "training": row.run_info.get("training")} for row in rows},
        "datasets": {column.name: {"source": column.source, "conversion": column.conversion, "error": column.error,
                                   "questions": len(column.examples) if column.examples is not None else None}
                     for column in columns},
        "cells": cells,
        **({"probes": probes} if probes else {}),
        "failures": failures,
    }


def merge_with_earlier(report: dict[str, Any], earlier: dict[str, Any] | None) -> dict[str, Any]:
    """`report` merged with the matrix.json an earlier run left: the rows and columns this run did not evaluate
    keep their cells, and a cell this run could not compute keeps the one computed before. Cells taken from
    the earlier report are marked `from_earlier_run` (with `error_in_latest_run` when this run failed there)."""
    if not earlier:
        return report
    rows = report["rows"] + [label for label in earlier.get("rows", []) if label not in report["rows"]]
    columns = report["columns"] + [name for name in earlier.get("columns", []) if name not in report["columns"]]
    cells: dict[str, dict[str, Any]] = {}
    for row in rows:
        for column in columns:
            now = report["cells"].get(row, {}).get(column)
            before = earlier.get("cells", {}).get(row, {}).get(column)
            if now is not None and "metrics" in now:
                cell = now
            elif before is not None and "metrics" in before:
                cell = {**before, "from_earlier_run": True}
                if now is not None:
                    cell["error_in_latest_run"] = now["error"]
            elif now is not None:
                cell = now
            else:
                continue
            cells.setdefault(row, {})[column] = cell
    return {**report, "rows": rows, "columns": columns, "cells": cells,
            "models": {**earlier.get("models", {}), **report["models"]},
            "datasets": {**earlier.get("datasets", {}), **report["datasets"]}}


def read_earlier_report(output_dir: str, name: str = "matrix.json") -> dict[str, Any] | None:
    path = os.path.join(output_dir, name)
    if not os.path.isfile(path):
        return None
    try:
        return read_json(path)
    except ValueError:
        logger.warning("%s is not valid JSON: it is replaced by this run's report", path)
        return None


def matrix_values(report: dict[str, Any], metric: str) -> np.ndarray:
    values = np.full((len(report["rows"]), len(report["columns"])), math.nan)
    for i, row in enumerate(report["rows"]):
        for j, column in enumerate(report["columns"]):
            cell = report["cells"].get(row, {}).get(column)
            if cell and "metrics" in cell:
                values[i, j] = cell_value(cell["metrics"], metric)
    return values


def cell_interval(metrics: dict[str, Any], metric: str) -> list[float] | None:
    """A cell's bootstrap interval of `metric` ([low, high]), or None; on a set without unanswerable questions
    HasAns_x's is x's, as for the score itself."""
    if f"{metric}_ci" in metrics:
        return metrics[f"{metric}_ci"]
    if metric.startswith("HasAns_") and "NoAns_total" not in metrics:
        return metrics.get(f"{metric[len('HasAns_'):]}_ci")
    return None


def cell_marks(report: dict[str, Any], values: np.ndarray, metric: str | None = None,
               separator: str = " ") -> list[list[str]]:
    """How each cell is shown: its score, `score*` when it comes from an earlier run, `failed`, or `–` (not
    evaluated); with `metric`, the score is followed by its interval (`41.2 [39.3, 43.1]`), after `separator`."""
    marks = []
    for i, row in enumerate(report["rows"]):
        marks.append([])
        for j, column in enumerate(report["columns"]):
            cell = report["cells"].get(row, {}).get(column) or {}
            if "metrics" in cell and not math.isnan(values[i, j]):
                mark = f"{values[i, j]:.1f}" + ("*" if cell.get("from_earlier_run") else "")
                interval = cell_interval(cell["metrics"], metric) if metric else None
                if interval:
                    mark += f"{separator}[{interval[0]:.1f}, {interval[1]:.1f}]"
                marks[-1].append(mark)
            else:
                marks[-1].append("failed" if "error" in cell else "–")
    return marks


def in_domain_cells(report: dict[str, Any]) -> list[tuple[int, int]]:
    columns = report["columns"]
    fine_tuned_on = [report["models"].get(row, {}).get("fine_tuned_on") for row in report["rows"]]
    return [(i, columns.index(name)) for i, name in enumerate(fine_tuned_on) if name in columns]


def drop_lines(report: dict[str, Any], values: np.ndarray, metric: str) -> list[str]:
    """One line per off-diagonal cell: its score against its row's in-domain score."""
    lines = []
    for i, j_in in in_domain_cells(report):
        in_domain = values[i, j_in]
        if math.isnan(in_domain):
            continue
        for j, column in enumerate(report["columns"]):
            if j == j_in or math.isnan(values[i, j]):
                continue
            change = values[i, j] - in_domain
            relative = f", {100 * change / in_domain:+.0f} %" if in_domain else ""
            lines.append(f"{report['rows'][i]} -> {column}: {metric} {values[i, j]:.1f} vs {in_domain:.1f} "
                         f"in-domain ({change:+.1f}{relative})")
    return lines


def marks_note(marks: list[list[str]], failed_where: str) -> str:
    """What the marks that do appear in `marks` mean (`failed_where`: where the failures are listed)."""
    shown = [mark for row in marks for mark in row]
    notes = []
    if any("*" in mark for mark in shown):
        notes.append("* computed by an earlier run (the latest run failed there, or did not evaluate it)")
    if "failed" in shown:
        notes.append(f"failed: see {failed_where}")
    if "–" in shown:
        notes.append("– not evaluated")
    return "; ".join(notes) + ("." if notes else "")


# Shown beside the chosen --metric: the models trained without unanswerable questions abstain wrongly on SQuAD 2.0's,
# so F1 mixes abstaining with reading; HasAns F1 is what replications that skip unanswerable questions report.
SECOND_METRIC = "HasAns_f1"


def report_metrics(metric: str) -> list[str]:
    """The matrices written: the chosen metric, then HasAns F1 unless it is that."""
    return [metric] if metric == SECOND_METRIC else [metric, SECOND_METRIC]


def heatmap_name(metric: str, first: bool) -> str:
    return "heatmap.png" if first else f"heatmap_{metric}.png"


def write_reports(output_dir: str, report: dict[str, Any], metric: str) -> list[str]:
    """matrix.json, matrix.csv (the chosen metric), matrix.md and a heatmap per matrix (heatmap.png for the chosen
    metric, heatmap_HasAns_f1.png), each cell with its confidence interval, from a (merged) report; returns the
    lines comparing each cell with its row's in-domain score."""
    rows, columns = report["rows"], report["columns"]
    diagonal = set(in_domain_cells(report))
    write_json_atomic(os.path.join(output_dir, "matrix.json"), report)

    confidence = next((cell["bootstrap"]["confidence"] for row_cells in report["cells"].values()
                       for cell in row_cells.values() if "bootstrap" in cell), None)
    interval_note = (f" Brackets: the {100 * confidence:.0f} % bootstrap confidence interval over the cell's "
                     "questions." if confidence else "")
    lines = [f"# Cross-dataset {metric}", "",
             f"Rows: fine-tuned on; columns: evaluated on; in-domain cells in bold.{interval_note}", ""]
    drops: list[str] = []
    for position, name in enumerate(report_metrics(metric)):
        values = matrix_values(report, name)
        marks = cell_marks(report, values, name)

        def shown(i: int, j: int) -> str:
            if (i, j) in diagonal and not math.isnan(values[i, j]):
                score, _, interval = marks[i][j].partition(" ")
                return f"**{score}**" + (f" {interval}" if interval else "")
            return marks[i][j]

        lines += ([] if position == 0 else [f"## {name}", ""]) + [
            "| fine-tuned on \\ evaluated on | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
        lines += [f"| {row} | " + " | ".join(shown(i, j) for j in range(len(columns))) + " |"
                  for i, row in enumerate(rows)]
        note = marks_note(marks, "\"Failed in the latest run\" below")
        lines += ["", note, ""] if note else [""]
        if position == 0:  # the chosen metric: its csv and its drops
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["fine-tuned on \\ evaluated on", *columns])
            for i, row in enumerate(rows):
                writer.writerow([row, *["" if math.isnan(v) else f"{v:.2f}" for v in values[i]]])
            write_text_atomic(os.path.join(output_dir, "matrix.csv"), buffer.getvalue())
            drops = drop_lines(report, values, name)
        if rows and columns:
            plot_heatmap(values, rows, columns, os.path.join(output_dir, heatmap_name(name, position == 0)),
                         metric_name=name, in_domain=sorted(diagonal),
                         cell_text=cell_marks(report, values, name, separator="\n"),
                         footnote=(marks_note(marks, "matrix.md") + interval_note).strip() or None)
    if drops:
        lines += [f"## Change from the in-domain {metric}", ""] + [f"- {line}" for line in drops] + [""]
    earlier = [f"{row} -> {column}: kept from an earlier run; this run: {cell['error_in_latest_run']}"
               for row in rows for column, cell in report["cells"].get(row, {}).items()
               if "error_in_latest_run" in cell]
    if report["failures"] or earlier:
        lines += ["## Failed in the latest run", ""] + [f"- {line}" for line in report["failures"] + earlier] + [""]
    write_text_atomic(os.path.join(output_dir, "matrix.md"), "\n".join(lines))
    return drops


def same_predictions(unprobed_dir: str, probed_dir: str) -> float | None:
    """The share (%) of a probed cell's questions answered exactly as without the probe ("" = no answer), or
    None when either cell has no stored predictions."""
    try:
        before = read_json(os.path.join(unprobed_dir, "eval_predictions.json"))
        after = read_json(os.path.join(probed_dir, "eval_predictions.json"))
    except (OSError, ValueError):
        return None
    shared = [qid for qid in after if qid in before]
    return 100.0 * sum(after[qid] == before[qid] for qid in shared) / len(shared) if shared else None


def write_probe_reports(output_dir: str, rows: list[ModelRow], columns: list[EvalColumn], probed: list[EvalColumn],
                        cells: dict, probe_cells: dict, metric: str) -> dict[str, Any]:
    """probes.md (per probe: the probed score and its change from the unprobed cell, and how many answers stayed
    the same) and probes.png; returns the probe results for matrix.json."""
    results: dict[str, Any] = {}
    for column in probed:
        result = results.setdefault(column.probe, {"cells": {}, "change": {}, "same_predictions": {}})
        for row in rows:
            cell = probe_cells[row.label][column.name]
            result["cells"].setdefault(row.label, {})[column.unprobed] = cell
            before, after = (cell_value(c["metrics"], metric) if "metrics" in c else math.nan
                             for c in (cells[row.label][column.unprobed], cell))
            result["change"].setdefault(row.label, {})[column.unprobed] = None if math.isnan(after - before) else after - before
            same = same_predictions(cell_dir_of(output_dir, row, column.unprobed), cell_dir_of(output_dir, row, column.name)) \
                if "metrics" in cell else None
            result["same_predictions"].setdefault(row.label, {})[column.unprobed] = same

    def shown(value: float | None, change: float | None = None, suffix: str = "") -> str:
        if value is None or math.isnan(value):
            return "–"
        return f"{value:.1f}{suffix}" + ("" if change is None else f" ({change:+.1f})")

    names = [column.name for column in columns]
    header = ["| model \\ dataset | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines = [f"# Robustness probes ({metric})", "",
             "Each cell: the score on the probed set (its change from the same model on the unprobed set); "
             "then the share of questions answered exactly as without the probe. – not computed or failed.", ""]
    for probe, result in results.items():
        lines += [f"## {probe}", ""] + header
        for row in rows:
            values = []
            for name in names:
                cell = result["cells"][row.label].get(name, {})
                values.append(shown(cell_value(cell["metrics"], metric) if "metrics" in cell else None,
                                    result["change"][row.label].get(name)))
            lines.append(f"| {row.label} | " + " | ".join(values) + " |")
        lines += ["", "Same answer as without the probe:", ""] + header
        lines += [f"| {row.label} | " + " | ".join(shown(result["same_predictions"][row.label].get(name), suffix=" %")
                                                   for name in names) + " |" for row in rows]
        lines.append("")
    write_text_atomic(os.path.join(output_dir, "probes.md"), "\n".join(lines))

    pairs = [(row, column) for row in rows for column in columns]
    scores = np.array([[cell_value(result["cells"][row.label][column.name]["metrics"], metric)
                        if "metrics" in result["cells"][row.label].get(column.name, {}) else math.nan
                        for result in results.values()] for row, column in pairs])
    changes = np.array([[math.nan if result["change"][row.label].get(column.name) is None
                         else result["change"][row.label][column.name] for result in results.values()]
                        for row, column in pairs])
    if pairs:
        plot_probe_changes(scores, changes, [f"{row.label} -> {column.name}" for row, column in pairs],
                           list(results), os.path.join(output_dir, "probes.png"), metric_name=metric)
    return results


def window_column(column: EvalColumn, tokenizer: Any, windows: WindowConfig, eval_args: QAEvalArguments,
                  training_args: TrainingArguments) -> datasets.Dataset:
    """An evaluation set's windows, with labels (for the evaluation loss) and the post-processing columns."""
    with training_args.main_process_first(desc=f"Windowing {column.name}"):
        return build_windows(
            column.examples, tokenizer, windows, with_labels=True,
            with_postprocess_columns=True, num_proc=eval_args.preprocessing_num_workers,
            load_from_cache_file=not eval_args.overwrite_cache, desc=f"Windowing {column.name}",
        )


def attach_intervals(cell: dict[str, Any], cell_dir: str, examples: datasets.Dataset, args: CrossEvalArguments,
                     seed: int) -> bool:
    """Give `cell` its bootstrap intervals (`<metric>_ci` in its metrics) and write each question's scores
    (eval_scores.json), from the predictions stored in `cell_dir`; a cell that has them for these bootstrap
    settings is left alone. Returns whether the cell changed."""
    bootstrap = {"resamples": args.bootstrap_resamples, "confidence": args.confidence, "seed": seed}
    if cell.get("bootstrap") == bootstrap:
        return False
    predictions = read_json(os.path.join(cell_dir, "eval_predictions.json"))
    columns = arrow_columns(examples, ["id", "answers"])
    references = dict(zip(columns["id"].to_pylist(), columns["answers"].to_pylist()))
    scores = question_scores(predictions, references)
    write_json_atomic(os.path.join(cell_dir, SCORES_FILE), {
        qid: {"exact": score.exact, "f1": score.f1, "has_answer": score.has_answer} for qid, score in scores.items()
    }, indent=None)
    cell["metrics"].update(score_intervals(scores, args.bootstrap_resamples, args.confidence, seed))
    cell["bootstrap"] = bootstrap
    return True


def evaluate_cell(
    row: ModelRow,
    column: EvalColumn,
    features: datasets.Dataset,
    model: Any,
    tokenizer: Any,
    args: CrossEvalArguments,
    eval_args: QAEvalArguments,
    training_args: TrainingArguments,
    metric: Any,
    cell_dir: str,
    settings: dict[str, Any],
    progress: str,
) -> dict[str, Any]:
    """One model on one dataset's windows, exactly as `run_qa.py --do_eval` computes it; stores and returns the
    cell."""
    examples = column.examples
    version_2 = eval_args.version_2_with_negative
    if version_2 is None:
        version_2 = default_version_2_with_negative(row.run_info.get("version_2_with_negative"), column.has_unanswerable)
    logger.info("%s: %d questions, %d windows", progress, len(examples), len(features))

    evaluator = QAEvaluator(examples, features, eval_args.postprocess_config(version_2), metric)
    trainer = BaseTrainer(
        model=model, args=training_args, eval_dataset=model_inputs(features), processing_class=tokenizer,
        data_collator=qa_data_collator(tokenizer, eval_args.pad_to_max_length, training_args),
        compute_metrics=evaluator,
    )
    start = time.perf_counter()
    results = trainer.evaluate()
    seconds = time.perf_counter() - start
    metrics = {key.removeprefix("eval_"): value for key, value in results.items()}
    metrics["samples"], metrics["windows"] = len(examples), len(features)
    cell = {"model": row.label, "dataset": column.name, "version_2_with_negative": version_2,
            "precision": precision_name(training_args), "seconds": round(seconds, 2), "metrics": metrics,
            "settings": settings}
    if trainer.is_world_process_zero():
        # Predictions first, metrics.json last: a cell counts as finished only once everything is written.
        write_prediction_files(cell_dir, "eval", evaluator.last_output)
        attach_intervals(cell, cell_dir, examples, args, training_args.seed)
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
    args, _, _ = parse_args_with_config(parser, argv)
    # The default output folder depends on --models, so it is known after a first parse.
    return parse_args_with_config(parser, argv, defaults={"output_dir": os.path.join(args.models, "cross_eval")})


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
    metric = load_squad_v2_metric()
    run = CellRun({row.label: {} for row in rows})
    total = len(rows) * len(columns)
    # Windows depend on the tokenizer, not the model: rows that share a tokenizer share them.
    windows_cache: dict[tuple[str, str], datasets.Dataset] = {}
    position = 0
    for row in rows:
        model = tokenizer = tokenizer_key = windows = None
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
                if training_args.process_index == 0 and attach_intervals(cell, cell_dir, column.examples, args, seed):
                    write_json_atomic(os.path.join(cell_dir, CELL_FILE), cell)
                run.cells[row.label][column.name] = cell
                run.reused += 1
                continue
            try:
                if model is None:
                    options = hub_options(args.cache_dir, token=args.token, trust_remote_code=args.trust_remote_code)
                    tokenizer = AutoTokenizer.from_pretrained(row.path, **options)
                    windows = eval_args.window_config(tokenizer)  # a ValueError for a tokenizer QA cannot use
                    tokenizer_key = tokenizer.backend_tokenizer.to_str()
                    model = AutoModelForQuestionAnswering.from_pretrained(row.path, **options)
                    keep_head_in_fp32(model, training_args)
                if (tokenizer_key, column.name) not in windows_cache:
                    windows_cache[tokenizer_key, column.name] = window_column(column, tokenizer, windows, eval_args,
                                                                               training_args)
                cell = evaluate_cell(row, column, windows_cache[tokenizer_key, column.name], model, tokenizer,
                                     args, eval_args, training_args, metric, cell_dir, settings, progress)
            except Exception as err:  # one broken cell (or model) must not stop the others
                message = f"cell {row.label} -> {column.name}: {type(err).__name__}: {err}"
                logger.error("%s", message)
                run.failures.append(message)
                run.cells[row.label][column.name] = {"error": f"{type(err).__name__}: {err}"}
                continue
            run.cells[row.label][column.name] = cell
            run.computed += 1
    return run


def write_matrix(output_dir: str, rows: list[ModelRow], columns: list[EvalColumn], probed: list[EvalColumn],
                 run: CellRun, metric: str, failures: list[str]) -> None:
    """The reports (matrix.*, heatmap.png and, with probes, probes.md/.png), merged with the ones already there,
    and matrix.md (and probes.md) printed."""
    # Probed cells have their own report, and their own part of matrix.json.
    cells = {label: dict(row_cells) for label, row_cells in run.cells.items()}
    probe_cells = {row.label: {column.name: cells[row.label].pop(column.name) for column in probed} for row in rows}
    probe_results = write_probe_reports(output_dir, rows, columns, probed, cells, probe_cells, metric) \
        if probed else None
    report = merge_with_earlier(run_report(rows, columns, cells, metric, failures, probe_results),
                                read_earlier_report(output_dir))
    drops = write_reports(output_dir, report, metric)
    for name in ("matrix.md", "probes.md") if probed else ("matrix.md",):
        with open(os.path.join(output_dir, name), encoding="utf-8") as handle:
            print(handle.read())
    logger.info("wrote matrix.json, matrix.csv, matrix.md and the heatmaps to %s (%d cells compared with their "
                "row's in-domain score)", output_dir, len(drops))


def write_overlap_analysis(output_dir: str, rows: list[ModelRow], columns: list[EvalColumn],
                           run: CellRun) -> list[str]:
    """The overlap analysis (qa_overlap.py) of the evaluated unprobed cells, from their stored predictions,
    merged with the one an earlier run left like the matrix; returns the cells whose analysis failed."""
    analysis = OverlapAnalysis()
    cells: dict[str, dict[str, Any]] = {row.label: {} for row in rows}
    failures = []
    for row in rows:
        for column in columns:
            cell = run.cells[row.label][column.name]
            if "metrics" not in cell:
                cells[row.label][column.name] = {"error": cell["error"]}
                continue
            try:
                summary = analysis.cell(cell_dir_of(output_dir, row, column.name), cell, column.name, column.examples)
            except (OSError, ValueError, KeyError) as err:  # a cell's missing or broken files: the others go on
                message = f"overlap analysis of {row.label} -> {column.name}: {type(err).__name__}: {err}"
                logger.error("%s", message)
                failures.append(message)
                cells[row.label][column.name] = {"error": f"{type(err).__name__}: {err}"}
                continue
            cells[row.label][column.name] = {"metrics": summary}
    # No absolute paths: the report is meant to be committed.
    report = {"analysis": "overlap", "rows": [row.label for row in rows],
              "columns": [column.name for column in columns],
              "models": {row.label: {"fine_tuned_on": row.fine_tuned_on} for row in rows},
              "datasets": {column.name: {"error": column.error} for column in columns}, "cells": cells,
              "failures": failures}
    write_analysis_reports(output_dir, merge_with_earlier(report, read_earlier_report(output_dir, ANALYSIS_FILE)))
    logger.info("overlap analysis: %d cell(s) computed, %d reused; wrote %s, analysis.md and overlap.png to %s",
                analysis.computed, analysis.reused, ANALYSIS_FILE, output_dir)
    return failures


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
        write_matrix(output_dir, rows, columns, probed, run, args.metric, failures)
        if "overlap" in args.analysis:
            failures += write_overlap_analysis(output_dir, rows, columns, run)
    if failures:
        logger.error("%s.", summary)
        return 1
    logger.info("%s.", summary)
    return 0


if __name__ == "__main__":
    run_script(main)
