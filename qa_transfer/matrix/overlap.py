"""Scores by question-context overlap, and how often a model answers from the sentence that repeats the question
(`cross_eval.py --analysis overlap`).

Sen & Saffari (2020) find that QA models lean on heuristics such as the overlap between the question and the
context. For every answerable question of an evaluated cell this module computes:

- its **overlap**: the share of the question's content words found in the context sentence that holds the first
  gold answer. Words are runs of letters and digits, lower-cased (punctuation splits words and is dropped);
  one-character words (the "s" of "children's", the "t" of "don't") and scikit-learn's English stop words are
  no content words. The same `words` serve questions and sentences. A question with no content word has
  overlap 0.
- its **bucket**: `low` (overlap < 1/3), `middle` (1/3 <= overlap < 2/3) or `high` (overlap >= 2/3). The
  thresholds are fixed, not a column's terciles: a column's terciles would put every dataset's questions into
  three equal thirds, hiding what differs between datasets (SQuAD's crowd workers wrote questions while reading
  the paragraph, Natural Questions' are search queries), and would move with the draw of questions; fixed
  thresholds mean the same thing in every column and for every model. Equal thirds of [0, 1] are the plainest
  fixed choice: "less than a third of the question's words are in the answer's sentence", "at least two thirds".
- the sentences (matrix.probes.sentence_spans, the probes' splitter) that hold the gold answer, the model's answer
  and the **top sentence**: the one with the highest overlap with the question (the earliest on a tie; none
  when no sentence shares a content word with the question). An answer lies in the sentence its first
  non-space character falls in (a character between two sentences counts for the one before). The model's
  answer is placed by its character offsets: the first entry of the cell's n-best list
  (eval_nbest_predictions.json) whose text is the prediction, else the prediction's first occurrence in the
  context.

Per cell and bucket: the questions, HasAns F1 and EM (x 100) with the bootstrap interval of the matrix cells
(the cell's resamples, confidence and seed), and the change from the cell's overall HasAns F1. The heuristic:
of the questions with a top sentence that the model answers (a non-empty answer it can place), the share of
answers from the top sentence, beside the share of gold answers there on the same questions, and the share of
answers from the top sentence where the gold answer lies elsewhere (a model that reads answers there less often;
a model that leans on overlap answers from the top sentence regardless).

Each cell's analysis is stored as `overlap.json` in its cell folder and reused while its settings (the cell's,
its predictions, the bootstrap, the analysis version) are unchanged. `write_analysis_reports` writes
analysis.json, analysis.md and overlap.png from a (merged) report.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import datasets
import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from qa_transfer.core.columns import arrow_columns
from qa_transfer.core.plots import plot_overlap_buckets
from qa_transfer.core.results_io import read_json, write_json_atomic, write_text_atomic
from qa_transfer.matrix.probes import sentence_spans
from qa_transfer.matrix.report import EvalColumn, ModelRow, cell_dir_of, merge_with_earlier, read_earlier_report
from qa_transfer.qa.scores import bootstrap_interval

logger = logging.getLogger("qa_transfer.matrix.overlap")

ANALYSES = ("overlap",)
OVERLAP_FILE = "overlap.json"
ANALYSIS_FILE = "analysis.json"
# Part of every overlap.json's settings: a change to what is computed here makes stored analyses stale.
ANALYSIS_VERSION = 1
THRESHOLDS = (1 / 3, 2 / 3)
BUCKETS = ("low", "middle", "high")
_WORD = re.compile(r"[^\W_]+")


# --- Words, sentences, overlap ------------------------------------------------------------------------


def words(text: str) -> set[str]:
    """The distinct words of `text`: lower-cased runs of letters and digits longer than one character."""
    return {word for word in _WORD.findall(text.lower()) if len(word) > 1}


def content_words(text: str) -> set[str]:
    """`words` less the English stop words."""
    return words(text) - ENGLISH_STOP_WORDS


def overlap(question_words: set[str], sentence: str) -> float:
    """The share of `question_words` (content words) that occur in `sentence`; 0 without any."""
    return len(question_words & words(sentence)) / len(question_words) if question_words else 0.0


def bucket_of(value: float) -> str:
    return BUCKETS[bisect.bisect_right(THRESHOLDS, value)]


def sentence_of(spans: list[tuple[int, int]], text: str, start: int) -> int:
    """The index of the sentence (of `spans`) that an answer `text` at character `start` lies in: the last
    sentence beginning at or before its first non-space character."""
    position = start + len(text) - len(text.lstrip())
    return max(0, bisect.bisect_right([begin for begin, _ in spans], position) - 1)


def question_overlaps(examples: datasets.Dataset) -> dict[str, dict[str, Any]]:
    """Each answerable question's overlap, bucket, answer sentence and top sentence (model-independent), and the
    context and its sentence spans, which placing a model's answers needs."""
    columns = {name: values.to_pylist() for name, values in
               arrow_columns(examples, ["id", "context", "question", "answers"]).items()}
    spans_of: dict[str, list[tuple[int, int]]] = {}  # contexts repeat across their questions
    questions = {}
    for qid, context, question, answers in zip(columns["id"], columns["context"], columns["question"],
                                               columns["answers"]):
        if not answers["text"] or not answers["text"][0]:
            continue
        spans = spans_of.setdefault(context, sentence_spans(context) or [(0, len(context))])
        asked = content_words(question)
        by_sentence = [overlap(asked, context[begin:end]) for begin, end in spans]
        best = max(by_sentence)
        answer_sentence = sentence_of(spans, answers["text"][0], answers["answer_start"][0])
        questions[qid] = {"overlap": by_sentence[answer_sentence], "bucket": bucket_of(by_sentence[answer_sentence]),
                          "answer_sentence": answer_sentence,
                          "top_sentence": by_sentence.index(best) if best > 0 else None,
                          "context": context, "spans": spans}
    return questions


def predicted_start(prediction: str, nbest: list[dict[str, Any]], context: str) -> int | None:
    """Where a non-empty `prediction` starts in `context`: the offsets of the first n-best entry with its text,
    else its first occurrence; None when it is not there."""
    for entry in nbest:
        if entry.get("text") == prediction and "offsets" in entry:
            return int(entry["offsets"][0])
    found = context.find(prediction)
    return found if found >= 0 else None


# --- One cell -----------------------------------------------------------------------------------------


def file_digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def analysis_settings(cell: dict[str, Any], cell_dir: str) -> dict[str, Any]:
    """What a cell's overlap.json was computed from: a stored analysis with other settings is computed again."""
    return {
        "version": ANALYSIS_VERSION,
        "thresholds": list(THRESHOLDS),
        # A digest, not the settings themselves: they hold the model's absolute path.
        "cell": hashlib.sha256(json.dumps(cell["settings"], sort_keys=True).encode()).hexdigest(),
        "predictions": file_digest(os.path.join(cell_dir, "eval_predictions.json")),
        "bootstrap": cell["bootstrap"],
    }


def percentage(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def top_sentence_shares(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The heuristic: of the questions with a top sentence that the model answers, the share (%) of its answers
    from the top sentence and of gold answers there; and its answers' share there where the gold is elsewhere."""
    answered = [row for row in rows.values()
                if row["top_sentence"] is not None and row["predicted_sentence"] is not None]
    elsewhere = [row for row in answered if row["answer_sentence"] != row["top_sentence"]]
    return {
        "answers": len(answered),
        "model": percentage(sum(row["predicted_sentence"] == row["top_sentence"] for row in answered), len(answered)),
        "gold": percentage(sum(row["answer_sentence"] == row["top_sentence"] for row in answered), len(answered)),
        "answers_gold_elsewhere": len(elsewhere),
        "model_gold_elsewhere": percentage(sum(row["predicted_sentence"] == row["top_sentence"] for row in elsewhere),
                                           len(elsewhere)),
    }


def bucket_scores(rows: Mapping[str, Mapping[str, Any]], scores: Mapping[str, Mapping[str, Any]],
                  bootstrap: Mapping[str, Any]) -> dict[str, Any]:
    """The cell's overall HasAns F1 and EM, and per bucket: questions, HasAns F1 and EM (x 100) with their
    bootstrap intervals, and the F1's change from the overall HasAns F1."""
    def mean(ids: list[str], name: str) -> float:
        return 100.0 * float(np.mean([scores[qid][name] for qid in ids]))

    everything = list(rows)
    summary: dict[str, Any] = {"questions": len(everything)}
    if everything:
        summary.update(HasAns_f1=mean(everything, "f1"), HasAns_exact=mean(everything, "exact"))
    summary["buckets"] = {}
    for name in BUCKETS:
        ids = [qid for qid in everything if rows[qid]["bucket"] == name]
        part: dict[str, Any] = {"questions": len(ids)}
        for metric in ("f1", "exact") if ids else ():
            part[f"HasAns_{metric}"] = mean(ids, metric)
            part[f"HasAns_{metric}_ci"] = list(bootstrap_interval(
                np.array([scores[qid][metric] for qid in ids]), bootstrap["resamples"], bootstrap["confidence"],
                bootstrap["seed"]))
        if ids:
            part["change"] = part["HasAns_f1"] - summary["HasAns_f1"]
        summary["buckets"][name] = part
    return summary


def analyse_cell(cell_dir: str, cell: dict[str, Any], questions: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Compute a cell's overlap.json from its stored predictions and per-question scores, and return its summary.
    `questions` is question_overlaps of the cell's column."""
    scores = read_json(os.path.join(cell_dir, "eval_scores.json"))
    predictions = read_json(os.path.join(cell_dir, "eval_predictions.json"))
    nbest_path = os.path.join(cell_dir, "eval_nbest_predictions.json")
    nbest = read_json(nbest_path) if os.path.isfile(nbest_path) else {}
    rows = {}
    for qid, question in questions.items():
        prediction = predictions[qid]
        start = predicted_start(prediction, nbest.get(qid, []), question["context"]) if prediction else None
        rows[qid] = {"overlap": question["overlap"], "bucket": question["bucket"],
                     "answer_sentence": question["answer_sentence"],
                     "predicted_sentence": None if start is None else sentence_of(question["spans"], prediction, start),
                     "top_sentence": question["top_sentence"]}
    summary = {**bucket_scores(rows, scores, cell["bootstrap"]), "top_sentence": top_sentence_shares(rows),
               "confidence": cell["bootstrap"]["confidence"]}
    write_json_atomic(os.path.join(cell_dir, OVERLAP_FILE),
                      {"settings": analysis_settings(cell, cell_dir), "summary": summary, "questions": rows},
                      indent=None)
    return summary


class OverlapAnalysis:
    """The overlap analysis of a run's cells: a cell's stored overlap.json is reused while its settings hold,
    and each column's question overlaps are computed at most once, and only for a cell that needs them."""

    def __init__(self) -> None:
        self._questions: dict[str, dict[str, dict[str, Any]]] = {}
        self.computed = 0
        self.reused = 0

    def cell(self, cell_dir: str, cell: dict[str, Any], column_name: str, examples: datasets.Dataset) -> dict[str, Any]:
        """The summary of one evaluated cell (`cell`: its metrics.json content) of the column `column_name`."""
        path = os.path.join(cell_dir, OVERLAP_FILE)
        if os.path.isfile(path):
            try:
                stored = read_json(path)
            except ValueError:
                stored = None
            if stored and stored.get("settings") == analysis_settings(cell, cell_dir):
                self.reused += 1
                return stored["summary"]
        if column_name not in self._questions:
            self._questions[column_name] = question_overlaps(examples)
        self.computed += 1
        return analyse_cell(cell_dir, cell, self._questions[column_name])


# --- Reports ------------------------------------------------------------------------------------------


def shown(value: float | None, interval: list[float] | None = None, change: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.1f}"
    if interval:
        text += f" [{interval[0]:.1f}, {interval[1]:.1f}]"
    return text + ("" if change is None else f" ({change:+.1f})")


def bucket_mark(part: Mapping[str, Any]) -> str:
    """A bucket's table cell: its questions, HasAns F1 [interval] (change), EM [interval]."""
    if not part.get("questions"):
        return "n=0"
    return (f"n={part['questions']}: F1 {shown(part['HasAns_f1'], part['HasAns_f1_ci'], part['change'])}<br>"
            f"EM {shown(part['HasAns_exact'], part['HasAns_exact_ci'])}")


def in_domain_column(report: Mapping[str, Any], row: str) -> str | None:
    return report["models"].get(row, {}).get("fine_tuned_on")


def cell_of(report: Mapping[str, Any], row: str, column: str) -> dict[str, Any]:
    return report["cells"].get(row, {}).get(column) or {}


def markdown_report(report: Mapping[str, Any]) -> str:
    """analysis.md: per column, a table of the models' bucket scores; then the top-sentence heuristic."""
    rows, columns = report["rows"], report["columns"]
    confidence = next((cell_of(report, row, column)["metrics"]["confidence"] for row in rows for column in columns
                       if "metrics" in cell_of(report, row, column)), 0.95)
    low, high = (str(Fraction(value).limit_denominator(100)) for value in THRESHOLDS)
    lines = ["# Scores by question-context overlap", "",
             "Overlap: the share of the question's content words in the context sentence holding the gold answer; "
             f"buckets low (< {low}), middle ({low} to < {high}), high (>= {high}); answerable questions only. "
             f"Each bucket: its questions, HasAns F1 [{100 * confidence:.0f} % bootstrap interval] (change from the "
             "cell's overall HasAns F1), HasAns EM [interval]. In-domain rows in bold; * from an earlier run; "
             "– not evaluated or failed.", ""]
    for column in columns:
        lines += [f"## {column}", "", "| model | " + " | ".join(BUCKETS) + " | all (HasAns F1) |",
                  "|---|" + "---:|" * (len(BUCKETS) + 1)]
        for row in rows:
            cell = cell_of(report, row, column)
            label = f"**{row}**" if in_domain_column(report, row) == column else row
            label += "*" if cell.get("from_earlier_run") else ""
            if "metrics" not in cell:
                lines.append(f"| {label} | " + " | ".join("–" for _ in range(len(BUCKETS) + 1)) + " |")
                continue
            summary = cell["metrics"]
            lines.append(f"| {label} | " + " | ".join(bucket_mark(summary["buckets"][name]) for name in BUCKETS)
                         + f" | {shown(summary.get('HasAns_f1'))} |")
        lines.append("")
    lines += ["## Answers from the sentence that repeats the question", "",
              "The top sentence: the context sentence with the highest overlap with the question. Each cell: of the "
              "questions the model answers (non-empty answers), the share of its answers from the top sentence / the "
              "share of gold answers there; then its answers' share from the top sentence where the gold answer is "
              "elsewhere.", "", "| model \\ dataset | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for row in rows:
        marks = []
        for column in columns:
            shares = cell_of(report, row, column).get("metrics", {}).get("top_sentence")
            marks.append("–" if not shares else
                         f"{shown(shares['model'])} % / {shown(shares['gold'])} %; elsewhere "
                         f"{shown(shares['model_gold_elsewhere'])} %")
        lines.append(f"| {row} | " + " | ".join(marks) + " |")
    lines.append("")
    if report.get("failures"):
        lines += ["## Failed in the latest run", ""] + [f"- {line}" for line in report["failures"]] + [""]
    return "\n".join(lines)


def write_analysis_reports(output_dir: str, report: Mapping[str, Any]) -> None:
    """analysis.json, analysis.md and overlap.png (HasAns F1 per bucket, a line per model, a panel per column)
    from a (merged) analysis report: {rows, columns, models: {row: {fine_tuned_on}}, cells: {row: {column:
    {"metrics": summary} or {"error": ...}}}, failures}."""
    rows, columns = report["rows"], report["columns"]
    write_json_atomic(os.path.join(output_dir, ANALYSIS_FILE), report)
    write_text_atomic(os.path.join(output_dir, "analysis.md"), markdown_report(report))
    values = np.full((len(rows), len(columns), len(BUCKETS)), math.nan)
    intervals = np.full(values.shape + (2,), math.nan)
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            buckets = cell_of(report, row, column).get("metrics", {}).get("buckets", {})
            for k, name in enumerate(BUCKETS):
                if buckets.get(name, {}).get("questions"):
                    values[i, j, k] = buckets[name]["HasAns_f1"]
                    intervals[i, j, k] = buckets[name]["HasAns_f1_ci"]
    if rows and columns:
        plot_overlap_buckets(values, intervals, rows, columns, BUCKETS, os.path.join(output_dir, "overlap.png"),
                             in_domain=[(i, columns.index(in_domain_column(report, row))) for i, row in enumerate(rows)
                                        if in_domain_column(report, row) in columns])


def write_overlap_analysis(output_dir: str, rows: list[ModelRow], columns: list[EvalColumn],
                           run_cells: dict[str, dict[str, Any]]) -> list[str]:
    """The overlap analysis (matrix/overlap.py) of the evaluated unprobed cells, from their stored predictions,
    merged with the one an earlier run left like the matrix; returns the cells whose analysis failed."""
    analysis = OverlapAnalysis()
    cells: dict[str, dict[str, Any]] = {row.label: {} for row in rows}
    failures = []
    for row in rows:
        for column in columns:
            cell = run_cells[row.label][column.name]
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
