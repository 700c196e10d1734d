#!/usr/bin/env python
"""One real row of the generalisation matrix: a MiniLM fine-tuned by `bench_qa.py` on SQuAD 2.0 (by default the
`abstain` preset's model), evaluated by cross_eval.py on SQuAD 2.0 dev questions and on the partial Natural
Questions, TriviaQA-web and NewsQA dev sets in ../shared/data (SQuAD 2.0 format, MRQA-derived, all answerable).

    python bench/bench_qa.py --preset abstain          # first: the model
    python bench/bench_cross_eval.py [--model DIR] [--max_eval_samples N] [--output_dir DIR] [-- cross_eval.py flags]

The SQuAD 2.0 column is the dev file the model was evaluated on when it was trained (its qa_run_info.json): for
the `abstain` model the 20-article genuine subset, since 15 other dev articles were in its training set; for the
`quality` model the whole dev set.

Runs cross_eval.py as a user would (a subprocess, offline, default 384/128 windows) and prints the row:
EM, F1, HasAns/NoAns F1 and wall time per cell. At most 2,000 seeded-random questions per set: for SQuAD the
training benchmark's own evaluation questions, for NQ 2,000 of 2,324; TriviaQA-web (499) and NewsQA (256) whole.

Figures: docs/benchmarks.md (cross-dataset rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data")
DATASETS = {
    "squad_v2": f"{DATA}/squad_v2/dev-v2.0.reconstructed.json.gz",
    "natural_questions": f"{DATA}/natural_questions/nq_dev.mrqa_cmr.squad2.json.gz",
    "trivia_qa": f"{DATA}/triviaqa/triviaqa_web_dev.mrqa_cmr.squad2.json.gz",
    "newsqa": f"{DATA}/newsqa/newsqa_dev.mrqa_cmr.squad2.json.gz",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(REPO, "bench", "results", "qa_abstain"),
                        help="A run_qa.py output folder (default: the abstain benchmark's model).")
    parser.add_argument("--max_eval_samples", type=int, default=2000, help="Questions per dataset, at most.")
    parser.add_argument("--output_dir", default=None, help="Default: bench/results/cross_eval_<model folder name>.")
    parser.add_argument("extra", nargs="*",
                        help="More cross_eval.py flags, after '--' (e.g. --version_2_with_negative false).")
    args = parser.parse_args()
    args.output_dir = args.output_dir or os.path.join(
        REPO, "bench", "results", f"cross_eval_{os.path.basename(os.path.normpath(args.model))}")

    # cross_eval.py reads a folder of models; this one holds the single model under the name it is labelled by.
    models_dir = os.path.join(args.output_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    with open(os.path.join(args.model, "qa_run_info.json"), encoding="utf-8") as handle:
        run_info = json.load(handle)
    label = run_info.get("dataset") or "squad_v2"
    # In-domain: the dev file the model was evaluated on in training, which no training question came from.
    datasets = {**DATASETS, "squad_v2": run_info.get("validation_source") or DATASETS["squad_v2"]}
    link = os.path.join(models_dir, label)
    if not os.path.islink(link):
        os.symlink(os.path.abspath(args.model), link)

    # 2,000 seeded-random questions per set: for SQuAD the training benchmark's own draw (same seed, same file),
    # NQ 2,000 of its 2,324; TriviaQA (499) and NewsQA (256) whole.
    command = [sys.executable, os.path.join(REPO, "cross_eval.py"), "--models", models_dir, "--report_to", "none",
               "--output_dir", os.path.join(args.output_dir, "matrix"), "--per_device_eval_batch_size", "64",
               "--seed", "42", "--max_eval_samples", str(args.max_eval_samples),
               "--datasets", *[f"{name}={path}" for name, path in datasets.items()], *args.extra]
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start

    print(f"\n== bench_cross_eval: {args.model} (fine-tuned on {label}) ==")
    print(f"{'evaluated on':20s} {'questions':>9s} {'windows':>8s} {'EM':>6s} {'F1':>6s} {'HasAns_F1':>9s} "
          f"{'NoAns_F1':>8s} {'best_F1':>7s} {'seconds':>8s}")
    print(f"squad_v2 (in-domain) questions from {datasets['squad_v2']}")
    for name in datasets:
        with open(os.path.join(args.output_dir, "matrix", "cells", label, name, "metrics.json"),
                  encoding="utf-8") as handle:
            cell = json.load(handle)
        m = cell["metrics"]
        has_f1 = m.get("HasAns_f1", m["f1"] if "NoAns_total" not in m else float("nan"))
        print(f"{name:20s} {m['samples']:9d} {m['windows']:8d} {m['exact']:6.1f} {m['f1']:6.1f} {has_f1:9.1f} "
              f"{m.get('NoAns_f1', float('nan')):8.1f} {m.get('best_f1', float('nan')):7.1f} {cell['seconds']:8.1f}")
    print(f"{'cross_eval.py wall time (s)':28s} {wall:.1f}")
    with open(os.path.join(args.output_dir, "matrix", "matrix.md"), encoding="utf-8") as handle:
        print("\n" + handle.read())


if __name__ == "__main__":
    main()
