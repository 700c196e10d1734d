"""The transfer matrix's report: its rows (fine-tuned models) and columns (evaluation sets), the cells' scores and
intervals, the merge with the matrix an earlier run left, and the files written from it: matrix.json, matrix.csv,
matrix.md, the heatmaps, and the probes' probes.md and probes.png. cross_eval.py computes the cells; this module
only renders them.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np

from qa_transfer.core.plots import plot_heatmap, plot_probe_changes
from qa_transfer.core.results_io import read_json, write_json_atomic, write_text_atomic
from qa_transfer.qa.scores import ANSWER_ALWAYS, describe_metric

logger = logging.getLogger("qa_transfer.matrix.report")


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
    conversion: str | None = None  # the rules that made the set (sources.adapters.conversion_name)
    has_unanswerable: bool = False
    error: str | None = None
    probe: str | None = None  # a probed column: the probe, and the column it transforms
    unprobed: str | None = None


def cell_value(metrics: dict[str, Any], metric: str) -> float:
    """The score shown for a cell; on a set without unanswerable questions HasAns_x is x."""
    if metric in metrics:
        return float(metrics[metric])
    fallback = metric.replace("HasAns_", "", 1)
    if fallback != metric and "NoAns_total" not in metrics and fallback in metrics:
        return float(metrics[fallback])
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
    the earlier report are marked `from_earlier_run` (with `error_in_latest_run` when this run failed there). Rows
    come in the order of their in-domain columns (the diagonal stays the diagonal)."""
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
    models = {**earlier.get("models", {}), **report["models"]}
    # Rows in the order of their in-domain columns, as one run orders them, whichever run evaluated them first.
    position = {name: index for index, name in enumerate(columns)}
    rows.sort(key=lambda label: position.get((models.get(label) or {}).get("fine_tuned_on"), len(position)))
    return {**report, "rows": rows, "columns": columns, "cells": cells,
            "models": models,
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
    fallback = metric.replace("HasAns_", "", 1)
    if fallback != metric and "NoAns_total" not in metrics:
        return metrics.get(f"{fallback}_ci")
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
# so F1 mixes abstaining with reading; HasAns F1 is what replications that skip unanswerable questions report, and
# answer-always HasAns F1 is how MRQA-style replications score (every question answered by its best span).
OTHER_METRICS = ("HasAns_f1", f"{ANSWER_ALWAYS}HasAns_f1")


def report_metrics(metric: str) -> list[str]:
    """The matrices written: the chosen metric, then HasAns F1 under either protocol unless it is that."""
    return list(dict.fromkeys([metric, *OTHER_METRICS]))


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
    lines = [f"# Cross-dataset {metric}: {describe_metric(metric)}", "",
             f"Rows: fine-tuned on; columns: evaluated on; in-domain cells in bold.{interval_note} Under the SQuAD 2.0 "
             "rules a question gets no answer where the model's null score wins; answer-always scores each question "
             "by its best non-empty span (as MRQA-style evaluations do), from the same predictions.", ""]
    drops: list[str] = []
    for position, name in enumerate(report_metrics(metric)):
        values = matrix_values(report, name)
        marks = cell_marks(report, values, name)

        def shown(i: int, j: int) -> str:
            if (i, j) in diagonal and not math.isnan(values[i, j]):
                score, _, interval = marks[i][j].partition(" ")
                return f"**{score}**" + (f" {interval}" if interval else "")
            return marks[i][j]

        lines += ([] if position == 0 else [f"## {name}: {describe_metric(name)}", ""]) + [
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
                         metric_name=name, title=describe_metric(name).replace(", ", "\n", 1),
                         in_domain=sorted(diagonal),
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
            result["change"].setdefault(row.label, {})[column.unprobed] = (
                None if math.isnan(after - before) else after - before)
            same = same_predictions(cell_dir_of(output_dir, row, column.unprobed),
                                    cell_dir_of(output_dir, row, column.name)) if "metrics" in cell else None
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


def write_matrix(output_dir: str, rows: list[ModelRow], columns: list[EvalColumn], probed: list[EvalColumn],
                 run_cells: dict[str, dict[str, Any]], metric: str, failures: list[str]) -> None:
    """The reports (matrix.*, heatmap.png and, with probes, probes.md/.png), merged with the ones already there,
    and matrix.md (and probes.md) printed."""
    # Probed cells have their own report, and their own part of matrix.json.
    cells = {label: dict(row_cells) for label, row_cells in run_cells.items()}
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
