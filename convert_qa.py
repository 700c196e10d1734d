"""Write any named QA dataset as one SQuAD 2.0 JSON file (the official nested layout), and print what the conversion
kept, repaired and dropped.

    python convert_qa.py --dataset quac --input val_v0.2.json --output quac_dev.json
    python convert_qa.py --dataset newsqa_combined_json --input combined-newsqa-data-v1.json --split validation \\
        --output newsqa_dev.json
    python convert_qa.py --dataset trivia_qa --data_dir triviaqa-rc --split validation --output triviaqa_dev.json
    python convert_qa.py --dataset natural_questions --split validation --output nq_dev.json   # streamed from the hub

The output loads back through `qa.data.load_qa_file` (and `--train_file/--validation_file`) unchanged. Conversions
are cached like `run_qa.py --dataset` ones (under --cache_dir, default the datasets cache), so converting a split
that training already converted is quick.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from qa_transfer.core.results_io import write_json_atomic
from qa_transfer.core.scripts import run_script
from qa_transfer.qa.data import SPLIT_ALIASES
from qa_transfer.sources.adapters import ADAPTERS, convert_named_file, convert_named_split


def squad_v2_document(records: Iterable[dict]) -> dict:
    """The official SQuAD 2.0 layout: one article per run of records sharing a title, one paragraph per run of
    records sharing a context within it; order is kept."""
    articles: list[dict] = []
    for record in records:
        if not articles or articles[-1]["title"] != record["title"]:
            articles.append({"title": record["title"], "paragraphs": []})
        paragraphs = articles[-1]["paragraphs"]
        if not paragraphs or paragraphs[-1]["context"] != record["context"]:
            paragraphs.append({"context": record["context"], "qas": []})
        answers = record["answers"]
        paragraphs[-1]["qas"].append(
            {
                "id": record["id"],
                "question": record["question"],
                "answers": [{"text": t, "answer_start": s} for t, s in zip(answers["text"], answers["answer_start"])],
                "is_impossible": not answers["text"],
            }
        )
    return {"version": "v2.0", "data": articles}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(ADAPTERS),
                        help="which dataset's conversion to apply")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", help="one official file (e.g. val_v0.2.json, dev.csv, nq-dev-00.jsonl.gz)")
    source.add_argument("--data_dir", help="the folder of official files; with neither this nor --input, the hub")
    parser.add_argument(
        "--split",
        choices=sorted(SPLIT_ALIASES),
        help="the split to convert (required with --data_dir or the hub; with --input it picks one split from files "
        "that hold several, such as NewsQA's combined JSON)",
    )
    parser.add_argument("--output", required=True, help="where to write the SQuAD 2.0 JSON")
    parser.add_argument("--cache_dir", help="cache folder for converted splits (default: the datasets cache)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    split = SPLIT_ALIASES[args.split] if args.split else None
    if args.input is None and split is None:
        parser.error("--split is required with --data_dir or when loading from the hub")
    if args.input is not None:
        dataset, stats = convert_named_file(args.dataset, args.input, args.cache_dir, split)
    else:
        dataset, stats = convert_named_split(args.dataset, split, args.data_dir, args.cache_dir)
    write_json_atomic(args.output, squad_v2_document(dataset))
    print(f"{args.output}: {stats.summary()}")
    return 0


if __name__ == "__main__":
    run_script(main)
