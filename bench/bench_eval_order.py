#!/usr/bin/env python
"""Evaluation speed of a fine-tuned QA model with its windows in the questions' order (how the windows are made,
and how this project evaluated until the windows came longest first) against longest first (what run_qa.py and
cross_eval.py do now), side by side in one process, on real evaluation files.

    python bench/bench_eval_order.py --model DIR                      # SQuAD 2.0 genuine dev and NewsQA, 500 each
    python bench/bench_eval_order.py --model DIR --max_eval_samples 2000 --rounds 3 -- --bf16

Each round evaluates each dataset in both orders (alternated: the order that goes first changes every round) with
the same Trainer and settings as `cross_eval.py` (`utils_qa.evaluate_qa`, 384/128 windows, batch 64, dynamic
padding); the best round of each is reported, with the padded tokens per window each order feeds the model, and a
check that both orders give every question the same answer. Flags after `--` go to the TrainingArguments.
Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from bench_matrix import EVAL_FILES, REPO, split_extra

# The transfer matrix's evaluation files (relative to the repository, where its commands run)
FILES = {name: os.path.join(REPO, path) for name, path in EVAL_FILES.items()}


def padded_tokens_per_window(features, batch_size: int) -> float:
    """The tokens the model sees per window when batches of `batch_size` are padded to their longest window."""
    lengths = [len(ids) for ids in features["input_ids"]]
    total = sum(max(lengths[i:i + batch_size]) * len(lengths[i:i + batch_size])
                for i in range(0, len(lengths), batch_size))
    return total / len(lengths)


def main() -> None:
    own, extra = split_extra(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A model folder written by run_qa.py --do_train.")
    parser.add_argument("--datasets", nargs="+", choices=list(FILES), default=["squad_v2", "newsqa"])
    parser.add_argument("--max_eval_samples", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(own)

    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, HfArgumentParser, TrainingArguments

    from qa_transfer.qa.arguments import PostprocessConfig, QAEvalArguments
    from qa_transfer.qa.data import load_qa_file, select_questions
    from qa_transfer.qa.scores import load_squad_v2_metric
    from qa_transfer.qa.training import qa_trainer
    from qa_transfer.qa.windows import build_windows, longest_first
    from utils_qa import evaluate_qa

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model)
    window_config = QAEvalArguments().window_config(tokenizer)
    metric = load_squad_v2_metric()
    output_dir = tempfile.mkdtemp(prefix="bench_eval_order_")
    # The Trainer's own parser: a bare switch (`--bf16`) works as on run_qa.py's command line
    [training_args] = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", output_dir, "--per_device_eval_batch_size", "64", "--report_to", "none", *extra])
    trainer = qa_trainer(model, tokenizer, training_args, pad_to_max_length=False)
    results = {}
    for name in args.datasets:
        examples = select_questions(load_qa_file(FILES[name], require_answers=False), args.max_eval_samples, None,
                                    "random", 42)
        as_made = build_windows(examples, tokenizer, window_config, with_labels=True, with_postprocess_columns=True)
        orders = {"questions' order": as_made, "longest first": longest_first(as_made)}
        version_2 = name == "squad_v2"
        seconds = {label: [] for label in orders}
        answers = {}
        for round_index in range(args.rounds):
            labels = list(orders) if round_index % 2 == 0 else list(orders)[::-1]
            for label in labels:
                start = time.perf_counter()
                metrics, answers[label] = evaluate_qa(trainer, examples, orders[label],
                                                      PostprocessConfig(version_2_with_negative=version_2), metric)
                seconds[label].append(time.perf_counter() - start)
                print(f"{name} round {round_index + 1} {label:16s} {seconds[label][-1]:7.1f} s, f1 "
                      f"{metrics['eval_f1']:.2f}", flush=True)
        same = sum(answers["questions' order"].predictions[q] == answers["longest first"].predictions[q]
                   for q in answers["longest first"].predictions)
        padded = {label: padded_tokens_per_window(features, 64) for label, features in orders.items()}
        results[name] = {"questions": len(examples), "windows": len(as_made), "seconds": seconds, "same": same,
                         "padded": padded}

    print(f"\n== best of {args.rounds} rounds, batch 64, {training_args.device}, "
          f"{'bf16' if training_args.bf16 else 'fp32'} ==")
    print(f"{'dataset':18s} {'questions':>9s} {'windows':>7s} {'order':16s} {'seconds':>8s} {'windows/s':>9s} "
          f"{'tokens/window':>13s}")
    for name, result in results.items():
        for label, times in result["seconds"].items():
            best = min(times)
            print(f"{name:18s} {result['questions']:9d} {result['windows']:7d} {label:16s} {best:8.1f} "
                  f"{result['windows'] / best:9.2f} {result['padded'][label]:13.1f}")
        speedup = min(result["seconds"]["questions' order"]) / min(result["seconds"]["longest first"])
        print(f"{name:18s} longest first {speedup:.2f}x; the same answer for {result['same']} of "
              f"{result['questions']} questions")


if __name__ == "__main__":
    main()
