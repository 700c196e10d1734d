#!/usr/bin/env python
"""Score a predictions file as the official SQuAD 2.0 evaluation script does, with bootstrap intervals, and set other
prediction files beside it on the same questions.

    python score_predictions.py dev-v2.0.json predictions.json
    python score_predictions.py dev-v2.0.json predictions.json --null_odds na_prob.json --output_dir scores
    python score_predictions.py dev.jsonl.gz run/eval_predictions.json --compare other.json \
--compare_null_odds other_na.json
    python score_predictions.py squad_v2 predictions.json --split validation

DATA is any file run_qa.py reads (SQuAD 1.1 / 2.0 JSON, flat JSON / JSON Lines, gzip), or a named dataset (its
--split). PREDICTIONS is {question id: answer text}, "" for no answer, as the official scripts and run_qa.py
(eval_predictions.json) write it. --null_odds is the official na_prob file ({id: score}; run_qa.py's
eval_null_odds.json too): a question whose score exceeds --na_prob_thresh counts as abstained on, and best_exact /
best_f1 give the score at the best threshold.

The figures are evaluate-v2.0.py's, key for key and to the last digit: exact, f1 and total, HasAns_* and NoAns_* where
the data has such questions, best_* with --null_odds; each with the percentile bootstrap interval of its questions
(`<figure>_ci`; best_* repeat the threshold search on each resample). --compare gives, for each other file, the
paired bootstrap difference OTHER - PREDICTIONS of each figure: its interval and the share of resamples on each side
of zero. Questions without a prediction count as wrong (the official script leaves them out of its totals), and
predicted ids that the data lacks are ignored; both are reported. --output_dir gets scores.json: the official keys
and values, the intervals, each question's scores (`questions`) and the comparisons (`compare`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from qa_transfer.core.errors import PredictionFileError, UsageError
from qa_transfer.core.results_io import write_json_atomic
from qa_transfer.core.scripts import run_script
from qa_transfer.qa.data import SPLIT_ALIASES, read_json_document
from qa_transfer.qa.scores import (
    PairedDifference,
    ScoredPredictions,
    compare_scored,
    figure_intervals,
    gold_answers,
    score_predictions,
)
from qa_transfer.sources.adapters import ADAPTERS, load_qa_split

logger = logging.getLogger("qa_transfer.score_predictions")

SCORES_FILE = "scores.json"
SHOWN_IDS = 3  # question ids named in a line about missing or extra predictions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="the questions: a QA file (SQuAD JSON, flat JSON / JSONL, gzip) or a dataset name")
    parser.add_argument("predictions", help="{question id: answer text} JSON, as evaluate-v2.0.py takes it")
    parser.add_argument("--null_odds", help="{question id: no-answer score} JSON (evaluate-v2.0.py's --na-prob-file)")
    parser.add_argument("--na_prob_thresh", type=float, default=1.0,
                        help="a question whose no-answer score exceeds this counts as abstained on (default: 1.0, "
                             "evaluate-v2.0.py's)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="OTHER",
                        help="other predictions files on the same questions: each one's difference OTHER - PREDICTIONS")
    parser.add_argument("--compare_null_odds", nargs="+", default=[], metavar="FILE",
                        help="the --compare files' no-answer scores, in their order (for best_exact / best_f1)")
    parser.add_argument("--output_dir", help="where scores.json is written (default: printed only)")
    parser.add_argument("--split", default="validation", choices=sorted(SPLIT_ALIASES),
                        help="the split of a named dataset (default: validation)")
    parser.add_argument("--data_dir", help="a named dataset's official files, read from this folder")
    parser.add_argument("--cache_dir", help="where converted named datasets are cached")
    parser.add_argument("--bootstrap_resamples", type=int, default=1000,
                        help="resamples of the questions (default: 1000)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="the intervals' confidence level (default: 0.95)")
    parser.add_argument("--seed", type=int, default=42, help="seeds the resampling (default: 42)")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.compare_null_odds and len(args.compare_null_odds) != len(args.compare):
        parser.error(f"--compare_null_odds takes one file per --compare file ({len(args.compare)}), "
                     f"got {len(args.compare_null_odds)}")
    if args.bootstrap_resamples < 1:
        parser.error(f"--bootstrap_resamples must be at least 1, got {args.bootstrap_resamples}")
    if not 0 < args.confidence < 1:
        parser.error(f"--confidence must be between 0 and 1, got {args.confidence}")


def read_id_map(path: str, kind: str, valid: Callable[[Any], bool]) -> dict[str, Any]:
    """A JSON object {question id: value} whose every value passes `valid` (`kind` names the value in errors)."""
    content = read_json_document(path)  # a file that is missing or not JSON is a QADataError naming it
    if not isinstance(content, dict):
        raise PredictionFileError(f"{path}: not a JSON object of question id -> {kind}, but a "
                                  f"{type(content).__name__}")
    for qid, value in content.items():
        if not valid(value):
            raise PredictionFileError(f"{path}: question {qid!r} holds {json.dumps(value)[:60]}, not {kind}")
    return content


def read_predictions(path: str) -> dict[str, str]:
    return read_id_map(path, "an answer text", lambda value: isinstance(value, str))


def read_null_odds(path: str) -> dict[str, float]:
    return read_id_map(path, "a number", lambda value: isinstance(value, (int, float)) and not isinstance(value, bool))


def load_references(args: argparse.Namespace) -> dict[str, dict]:
    """Question id -> gold answers of DATA, in its order."""
    if os.path.isfile(args.data):
        examples = load_qa_split(args.split, data_file=args.data, repair_offsets=True)
    elif args.data in ADAPTERS:
        examples = load_qa_split(args.split, dataset_name=args.data, data_dir=args.data_dir, cache_dir=args.cache_dir)
    else:
        raise UsageError(f"{args.data}: no such file, and not a dataset name ({', '.join(sorted(ADAPTERS))})")
    return gold_answers(examples)


def score_file(path: str, null_odds_path: str | None, references: dict[str, dict],
               na_prob_thresh: float) -> ScoredPredictions:
    """One predictions file scored, with a line on its questions without a prediction and its ids the data lacks."""
    predictions = read_predictions(path)
    na_scores = read_null_odds(null_odds_path) if null_odds_path else None
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        logger.warning("%s: %d of %d questions have no prediction and count as wrong, e.g. %s", path, len(missing),
                       len(references), ", ".join(missing[:SHOWN_IDS]))
    extra = [qid for qid in predictions if qid not in references]
    if extra:
        logger.info("%s: %d predicted ids are not in the data and are ignored, e.g. %s", path, len(extra),
                    ", ".join(extra[:SHOWN_IDS]))
    return score_predictions(predictions, references, na_scores, na_prob_thresh)


def print_figures(path: str, figures: dict[str, Any], intervals: dict[str, list[float]], confidence: float) -> None:
    print(f"{path}")
    print(f"  {'figure':18s} {'value':>22s}  {confidence:.0%} interval")
    for key, value in figures.items():
        interval = intervals.get(f"{key}_ci")
        shown = f"  [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""
        print(f"  {key:18s} {value!r:>22}{shown}")


def print_comparison(path: str, other: str, base: dict[str, Any], figures: dict[str, Any],
                     differences: dict[str, PairedDifference], confidence: float) -> None:
    print(f"{other} - {path} (paired bootstrap, the same questions resampled for both)")
    print(f"  {'figure':14s} {'base':>7s} {'other':>7s} {'other-base':>10s}  {confidence:.0%} interval"
          f"{'< 0':>16s} {'> 0':>6s}")
    for key, paired in differences.items():
        low, high = paired.interval
        print(f"  {key:14s} {base[key]:7.2f} {figures[key]:7.2f} {paired.difference:+10.2f}  "
              f"[{low:+.2f}, {high:+.2f}]{paired.below_zero:>10.3f} {paired.above_zero:6.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    logging.basicConfig(format="%(levelname)s - %(message)s", level=logging.INFO, stream=sys.stderr)
    bootstrap = {"resamples": args.bootstrap_resamples, "confidence": args.confidence, "seed": args.seed}
    references = load_references(args)
    base = score_file(args.predictions, args.null_odds, references, args.na_prob_thresh)
    others = [score_file(other, null_odds, references, args.na_prob_thresh)
              for other, null_odds in zip(args.compare, args.compare_null_odds or [None] * len(args.compare))]

    intervals = figure_intervals(base, **bootstrap)
    print_figures(args.predictions, base.figures, intervals, args.confidence)
    comparisons = {}
    for path, other in zip(args.compare, others):
        differences = compare_scored(base, other, **bootstrap)
        print_comparison(args.predictions, path, base.figures, other.figures, differences, args.confidence)
        comparisons[path] = {"figures": other.figures,
                             "differences": {key: vars(paired) for key, paired in differences.items()}}

    if args.output_dir:
        result = {**base.figures, **intervals, "bootstrap": bootstrap, "data": args.data,
                  "predictions": args.predictions, "null_odds": args.null_odds, "compare": comparisons,
                  "questions": base.question_rows()}
        os.makedirs(args.output_dir, exist_ok=True)
        write_json_atomic(os.path.join(args.output_dir, SCORES_FILE), result)
        print(f"wrote {os.path.join(args.output_dir, SCORES_FILE)}")
    return 0


if __name__ == "__main__":
    run_script(main)
