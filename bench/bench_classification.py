#!/usr/bin/env python
"""Benchmark: vaccine-stance classification with a packaged encoder (MiniLM by default), fine-tuned on this machine.

In one process, through run_classification.main:

1. main run: fine-tune on the vaccine training set with the recommended settings (this script's defaults),
   evaluate on the validation set, and fit the TF-IDF + logistic-regression baseline in the same run;
2. ablation: lemmatization off and on, each a fresh fine-tune of --ablation_epochs epochs (fewer than the
   main run, to keep the benchmark short; the main run is reused for one side when the epochs agree);
3. speed: training samples/s over the same --speed_steps steps with dynamic padding (length-grouped
   batches, as recommended), dynamic padding with random batches, and every batch padded to max length.

Any other flag is passed to every run_classification run, after this script's own (so it wins): e.g.
`--save_strategy epoch` to keep a checkpoint per epoch, `--logging_steps 25` to see progress. On a CPU without a
GPU that has bf16 instructions every run gets `--bf16`, as fine_tune_all.py gives it; `--bf16 false` runs fp32.

Prints the figures and writes them to bench/results/classification.json; each run's outputs (metrics, plots,
comparison.md) stay under bench/results/classification/. Figures: docs/benchmarks.md.

    python bench/bench_classification.py                       # the full benchmark
    python bench/bench_classification.py --max_train_samples 300 --max_eval_samples 200 --epochs 1 \\
        --ablation_epochs 1 --speed_steps 5                     # a smoke run
    python bench/bench_classification.py --model all-mpnet-base-v2 --results_dir bench/results/mpnet \\
        --epochs 1 --max_steps 250 --batch_size 32 --learning_rate 5e-5 --max_seq_length 64 --skip_ablation \\
        --skip_speed --logging_strategy steps --logging_steps 50 --save_strategy steps --save_steps 125
                                                                # an MPNet-base run (docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import run_classification
from fine_tune_all import precision_flags
from qa_transfer.core.packaged_models import PACKAGED_MINILM
from qa_transfer.core.results_io import write_json_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "vaccine_stance"
# The goals on this validation set: for the packaged MiniLM, and for a base-size encoder.
TARGETS = {PACKAGED_MINILM: {"accuracy": 0.78, "f1_macro": 0.72}}
BASE_MODEL_TARGET = {"accuracy": 0.78, "f1_macro": 0.74}
# Reference figures on this validation set, for the printed comparison.
REFERENCES = {
    "seed BERT-base (seed report)": {"accuracy": 0.71},
    "TF-IDF + logistic regression (issue)": {"accuracy": 0.740, "f1_macro": 0.698},
    "transformers example, MiniLM, lr 5e-5, 2 epochs, padded to 80 (issue)": {
        "accuracy": 0.754,
        "f1_macro": 0.692,
        "train_runtime": 1431.0,
    },
}


def parse_arguments() -> argparse.Namespace:
    # No abbreviations: a Trainer flag must not be taken for a prefix of this script's own.
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR, help="Folder with the vaccine CSV files.")
    parser.add_argument("--model", default=PACKAGED_MINILM, help="--model_name_or_path to use.")
    parser.add_argument("--epochs", type=float, default=3, help="Epochs of the main run.")
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.1, help="Warm-up, as a share of the training steps.")
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=80)
    parser.add_argument("--class_weights", choices=["none", "balanced"], default="balanced")
    parser.add_argument("--label_smoothing", type=float, default=0.0, help="--label_smoothing_factor of the runs.")
    parser.add_argument("--lemmatize", action="store_true", help="Lemmatize in the main run (default: off).")
    parser.add_argument(
        "--train_all_embeddings",
        action="store_true",
        help="Also train the word embeddings (default: frozen, which speeds up CPU training).",
    )
    parser.add_argument("--max_train_samples", type=int, default=None, help="Use only the first N training rows.")
    parser.add_argument("--max_eval_samples", type=int, default=None, help="Use only the first N validation rows.")
    parser.add_argument("--skip_ablation", action="store_true")
    parser.add_argument("--ablation_epochs", type=float, default=1, help="Epochs of each ablation run.")
    parser.add_argument("--skip_speed", action="store_true")
    parser.add_argument("--speed_steps", type=int, default=40, help="Training steps timed for each padding mode.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results_dir", type=Path, default=REPO_ROOT / "bench" / "results")
    args, args.trainer_flags = parser.parse_known_args()
    return args


def common_arguments(args: argparse.Namespace, output_dir: Path) -> list[str]:
    """The run_classification flags every run shares: data, model, batch size, length and sample limits."""
    argv = [
        "--model_name_or_path", args.model,
        "--train_file", str(args.data_dir / "vaccine_train_set.csv"),
        "--class_names", "neutral,anti-vax,pro-vax",
        "--output_dir", str(output_dir),
        "--overwrite_output_dir",  # every benchmark run trains from scratch, whatever an earlier one left
        "--max_seq_length", str(args.max_seq_length),
        "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", "64",
        "--learning_rate", str(args.learning_rate),
        "--warmup_steps", str(args.warmup),
        "--weight_decay", str(args.weight_decay),
        "--class_weights", args.class_weights,
        "--label_smoothing_factor", str(args.label_smoothing),
        "--save_strategy", "no",
        "--seed", str(args.seed),
        "--disable_tqdm", "true",
        "--dataloader_pin_memory", "false",
    ]
    if not args.train_all_embeddings:
        argv.append("--freeze_word_embeddings")
    if args.max_train_samples is not None:
        argv += ["--max_train_samples", str(args.max_train_samples)]
    return argv + precision_flags(args.trainer_flags) + args.trainer_flags


def fine_tune_and_evaluate(
    args: argparse.Namespace, name: str, epochs: float, lemmatize: bool, baseline: bool
) -> dict:
    """One train + evaluate run with the recommended settings; its all_results.json plus the wall time."""
    output_dir = args.results_dir / "classification" / name
    argv = common_arguments(args, output_dir) + [
        "--validation_file", str(args.data_dir / "vaccine_validation_set.csv"),
        "--num_train_epochs", str(epochs),
        "--train_sampling_strategy", "group_by_length",
        "--lemmatize", str(lemmatize),
        "--baseline", "tfidf" if baseline else "none",
    ]
    if args.max_eval_samples is not None:
        argv += ["--max_eval_samples", str(args.max_eval_samples)]
    started = time.perf_counter()
    run_classification.main(argv)
    results = json.loads((output_dir / "all_results.json").read_text())
    return results | {"wall_time": time.perf_counter() - started, "output_dir": str(output_dir)}


def training_speed(args: argparse.Namespace, name: str, extra_flags: list[str]) -> float:
    """Training samples/s over --speed_steps steps (no evaluation)."""
    output_dir = args.results_dir / "classification" / f"speed_{name}"
    argv = common_arguments(args, output_dir) + ["--max_steps", str(args.speed_steps)]
    run_classification.main(argv + extra_flags)
    return json.loads((output_dir / "train_results.json").read_text())["train_samples_per_second"]


def scores(results: dict, prefix: str = "eval") -> dict[str, float]:
    return {key: results[f"{prefix}_{key}"] for key in ("accuracy", "f1_macro", "f1_weighted")}


def main() -> None:
    args = parse_arguments()
    for name in ("vaccine_train_set.csv", "vaccine_validation_set.csv"):
        if not (args.data_dir / name).is_file():
            sys.exit(f"error: {args.data_dir / name} not found; pass --data_dir")
    started = time.perf_counter()
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    target = TARGETS.get(args.model, BASE_MODEL_TARGET)
    report: dict = {"settings": settings, "target": target, "references": REFERENCES}

    main_run = fine_tune_and_evaluate(args, "main", args.epochs, args.lemmatize, baseline=True)
    report["main"] = scores(main_run) | {
        "train_runtime": main_run["train_runtime"],
        "train_samples_per_second": main_run["train_samples_per_second"],
        "train_samples": main_run["train_samples"],
        "eval_samples": main_run["eval_samples"],
        "wall_time": main_run["wall_time"],
    }
    report["baseline_tfidf"] = scores(main_run, prefix="baseline")
    report["target_met"] = all(report["main"][key] >= value for key, value in target.items())

    if not args.skip_ablation:
        ablation = {"epochs": args.ablation_epochs}
        for lemmatize in (False, True):
            side = "lemmatize_on" if lemmatize else "lemmatize_off"
            if lemmatize == args.lemmatize and args.ablation_epochs == args.epochs:
                run = main_run
            else:
                run = fine_tune_and_evaluate(args, f"ablation_{side}", args.ablation_epochs, lemmatize, baseline=True)
            ablation[side] = scores(run) | {"tfidf": scores(run, prefix="baseline"), "wall_time": run["wall_time"]}
        report["ablation"] = ablation

    if not args.skip_speed:
        report["speed"] = {
            "steps": args.speed_steps,
            "dynamic_length_grouped": training_speed(
                args, "dynamic_grouped", ["--train_sampling_strategy", "group_by_length"]
            ),
            "dynamic_random_batches": training_speed(args, "dynamic_random", []),
            f"padded_to_{args.max_seq_length}": training_speed(args, "padded", ["--pad_to_max_length"]),
        }

    report["total_wall_time"] = time.perf_counter() - started
    results_path = args.results_dir / "classification.json"
    write_json_atomic(results_path, report)
    print(summary(report, args))
    print(f"\nFigures written to {results_path}")


def summary(report: dict, args: argparse.Namespace) -> str:
    main_run = report["main"]
    lines = [
        "",
        f"=== Tweet stance benchmark: {args.model} on vaccine_stance ===",
        f"main run: {args.epochs:g} epochs, lr {args.learning_rate:g}, warm-up {args.warmup:g}, "
        f"batch {args.batch_size}, max length {args.max_seq_length}, class weights {args.class_weights}, "
        f"label smoothing {args.label_smoothing:g}, "
        f"lemmatize {args.lemmatize}, "
        f"word embeddings {'trained' if args.train_all_embeddings else 'frozen'}; "
        f"{main_run['train_samples']} training / {main_run['eval_samples']} validation tweets",
        "",
        f"{'model':<58}{'accuracy':>10}{'macro-F1':>10}{'weighted-F1':>13}",
    ]
    rows = [
        (f"fine-tuned {args.model} (this run)", main_run),
        ("TF-IDF + logistic regression (this run)", report["baseline_tfidf"]),
    ]
    rows += [(f"reference: {name}", figures) for name, figures in REFERENCES.items()]
    for name, figures in rows:
        cells = [f"{figures[key]:.3f}" if key in figures else "-" for key in ("accuracy", "f1_macro", "f1_weighted")]
        lines.append(f"{name[:57]:<58}{cells[0]:>10}{cells[1]:>10}{cells[2]:>13}")
    lines += [
        "",
        f"training: {main_run['train_runtime']:.0f} s, {main_run['train_samples_per_second']:.1f} samples/s; "
        f"whole main run (with evaluation and baseline): {main_run['wall_time']:.0f} s",
        f"target accuracy >= {report['target']['accuracy']} and macro-F1 >= {report['target']['f1_macro']}: "
        + ("met" if report["target_met"] else "NOT met"),
    ]
    if "ablation" in report:
        ablation = report["ablation"]
        lines += ["", f"lemmatization ablation ({ablation['epochs']:g} epoch(s) per run, fewer than the main run "
                      "when so set; TF-IDF on the same text):"]
        for side in ("lemmatize_off", "lemmatize_on"):
            run = ablation[side]
            lines.append(
                f"  {side:<14} fine-tuned accuracy {run['accuracy']:.3f}, macro-F1 {run['f1_macro']:.3f}; "
                f"TF-IDF accuracy {run['tfidf']['accuracy']:.3f}, macro-F1 {run['tfidf']['f1_macro']:.3f}"
            )
    if "speed" in report:
        speed = report["speed"]
        padded_key = f"padded_to_{args.max_seq_length}"
        lines += ["", f"training speed over {speed['steps']} steps of {args.batch_size} (samples/s):"]
        for key in ("dynamic_length_grouped", "dynamic_random_batches", padded_key):
            lines.append(f"  {key:<24} {speed[key]:8.1f}  ({speed[key] / speed[padded_key]:.2f}x padded)")
    lines.append(f"\ntotal wall time: {report['total_wall_time']:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
