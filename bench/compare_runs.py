#!/usr/bin/env python
"""Two QA runs on the same questions, compared question by question: is their difference larger than noise?

    python bench/compare_runs.py RUN_A RUN_B --validation_file dev.json [--max_eval_samples N --subset_strategy first]

RUN_A and RUN_B are run_qa.py output folders evaluated on the same questions (their eval_predictions.json). Prints
each run's EM / F1 / HasAns F1 / NoAns F1 under the official SQuAD 2.0 rules, and the paired difference B - A
of each with its 95 % bootstrap interval: the same resampled questions for both runs, so the interval is that of
the difference itself, far narrower than two separate intervals. An interval that holds 0 means no measurable
difference on these questions. The bootstrap is qa.scores.paired_difference, the one score_predictions.py
--compare uses. Used for the fp32 / bf16 comparison in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from qa_transfer.core.results_io import read_json
from qa_transfer.qa.scores import gold_answers, paired_difference, question_scores
from qa_transfer.sources.adapters import load_qa_split

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compare(run_a: str, run_b: str, references: dict[str, dict], resamples: int = 1000, seed: int = 0) -> dict:
    scores = {}
    for name, run in (("a", run_a), ("b", run_b)):
        predictions = read_json(os.path.join(run, "eval_predictions.json"))
        scores[name] = question_scores(predictions, {qid: references[qid] for qid in predictions})
    shared = [qid for qid in scores["a"] if qid in scores["b"]]
    if len(shared) != len(scores["a"]) or len(shared) != len(scores["b"]):
        raise ValueError(f"the runs answered different questions ({len(scores['a'])} and {len(scores['b'])}, "
                         f"{len(shared)} shared)")
    parts = {"all": shared, "HasAns": [q for q in shared if scores["a"][q].has_answer],
             "NoAns": [q for q in shared if not scores["a"][q].has_answer]}
    result = {}
    for part, qids in parts.items():
        if not qids:
            continue
        for metric in ("exact", "f1"):
            a = np.array([getattr(scores["a"][q], metric) for q in qids])
            b = np.array([getattr(scores["b"][q], metric) for q in qids])
            paired = paired_difference(a, b, resamples, 0.95, seed)
            result[f"{part} {metric}"] = {"a": 100 * a.mean(), "b": 100 * b.mean(), "b_minus_a": paired.difference,
                                          "interval": paired.interval, "questions": len(qids)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--validation_file", required=True)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    examples = load_qa_split("validation", data_file=args.validation_file)
    references = gold_answers(examples)
    print(f"A = {args.run_a}\nB = {args.run_b}")
    print(f"{'':14s} {'A':>6s} {'B':>6s} {'B - A':>6s}  95 % interval of B - A  questions")
    for name, row in compare(args.run_a, args.run_b, references, args.resamples).items():
        low, high = row["interval"]
        print(f"{name:14s} {row['a']:6.1f} {row['b']:6.1f} {row['b_minus_a']:+6.1f}  [{low:+.1f}, {high:+.1f}]"
              f"{row['questions']:12d}")


if __name__ == "__main__":
    main()
