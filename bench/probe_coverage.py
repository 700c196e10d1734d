"""Check the robustness probes of matrix/probes.py on real evaluation sets and print what they do to each: for every
probe, how many questions it keeps, how many answers end up misaligned (must be 0) and how long it took; how many
answerable questions `negation` can negate; how often `filler` finds no auxiliary verb and falls back to putting
its word after the question's first word; and how many answers `--random_label_fraction` replaces.

    python bench/probe_coverage.py                      # the four dev sets in ../shared/data, whole
    python bench/probe_coverage.py --sets squad_v2=dev.json --max_questions 2000 --seed 1

Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from datasets import Dataset, disable_progress_bars

from qa_transfer.matrix.probes import apply_probe, auxiliary_index, randomize_answers
from qa_transfer.qa.data import load_qa_file

REPO_ROOT = Path(__file__).resolve().parent.parent

DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_SETS = [
    f"squad_v2={DATA / 'squad_v2' / 'dev-v2.0.genuine_subset.json.gz'}",
    f"natural_questions={DATA / 'natural_questions' / 'nq_dev.mrqa_cmr.squad2.json.gz'}",
    f"newsqa={DATA / 'newsqa' / 'newsqa_dev.mrqa_cmr.squad2.json.gz'}",
    f"trivia_qa={DATA / 'triviaqa' / 'triviaqa_web_dev.mrqa_cmr.squad2.json.gz'}",
]
EVALUATION_PROBES = ["shuffled_context", "question_prefix:3", "no_question", "filler", "negation"]


def misaligned_answers(dataset: Dataset) -> int:
    """Answers whose text is not at their answer_start in their context."""
    return sum(
        record["context"][start:start + len(text)] != text
        for record in dataset
        for text, start in zip(record["answers"]["text"], record["answers"]["answer_start"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS, metavar="NAME=PATH", help="evaluation sets")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max_questions", type=int, default=None, help="a seeded sample of each set (default: all)")
    parser.add_argument("--random_label_fraction", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    disable_progress_bars()

    for spec in args.sets:
        name, _, path = spec.partition("=")
        dataset = load_qa_file(path)
        if args.max_questions is not None and args.max_questions < len(dataset):
            dataset = dataset.shuffle(seed=args.seed).select(range(args.max_questions))
        answerable = sum(1 for texts in dataset["answers"]["text"] if texts)
        print(f"\n{name}: {len(dataset):,} questions, {answerable:,} answerable ({path})")
        print(f"  {'probe':<20} {'kept':>7} {'misaligned':>10} {'seconds':>8}")
        for probe in EVALUATION_PROBES:
            started = time.perf_counter()
            probed = apply_probe(dataset, probe, seed=args.seed)
            seconds = time.perf_counter() - started
            print(f"  {probe:<20} {len(probed):>7,} {misaligned_answers(probed):>10} {seconds:>8.1f}")
            if probe == "negation":
                print(f"    negated: {len(probed):,} of {answerable:,} answerable "
                      f"({100 * len(probed) / answerable:.0f} %); the others have no auxiliary verb to negate")
        fallback = sum(1 for question in dataset["question"] if auxiliary_index(question.split()[1:]) is None)
        print(f"    filler after the first word (no auxiliary verb): {fallback:,} "
              f"({100 * fallback / len(dataset):.0f} %)")
        relabelled, changed = randomize_answers(dataset, args.random_label_fraction, seed=args.seed)
        print(f"  random labels {args.random_label_fraction:g}: {changed:,} answers replaced, "
              f"{misaligned_answers(relabelled)} misaligned")


if __name__ == "__main__":
    main()
