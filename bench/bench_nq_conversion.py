"""Benchmark: convert a large synthetic Natural Questions file (original layout, `.jsonl.gz`, 200 MB or more
uncompressed) through the natural_questions adapter, which streams records into the Arrow cache, and print the
wall time, records/s and peak RSS of the conversion, then the time of a second, cached load.

The records are six dev-layout examples built here (SEED_EXAMPLES: five annotators each; an answer agreed on, a
yes/no answer only, a long answer that is a table, a long answer only one annotator chose, a split vote, an answer
of two spans), each copy with a new example_id and padded, after its annotated spans, with filler paragraphs that
vary from copy to copy, so that every copy converts like its original while documents reach a realistic size (the
real train set averages about 140 KB per example). The conversion runs in a child process so that its peak RSS is
its own. Everything is written to a temporary folder that is removed afterwards.

    python bench/bench_nq_conversion.py [--target_mb 220] [--example_kb 140]

Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILLER_WORDS = ["the", "river", "city", "was", "built", "by", "people", "who", "crossed", "the", "old", "bridge",
                "every", "year", "to", "reach", "the", "capital"]
NO_ANSWER = {"start_byte": -1, "end_byte": -1, "start_token": -1, "end_token": -1, "candidate_index": -1}


def nq_example(example_id: int, title: str, question: str, blocks: list[tuple[str, str]],
               annotators: list[tuple[int | None, list[tuple[int, int, int]], str]]) -> dict:
    """One example in Natural Questions' original layout. `blocks`: (tag, text) pairs, each an HTML element of
    words (tag "P": a paragraph, the only long answer the conversion keeps); the document tokens are the tags and
    the words, one space apart in document_html (a comma or full stop against the word before it). `annotators`:
    per annotator, the block of its long answer (None: none), its short answers as (block, first word, words) and
    its yes/no answer."""
    html, tokens, block_tokens = "<html><body>", [], []

    def add(text: str, is_html: bool) -> None:
        nonlocal html
        if text in (",", "."):
            html = html[:-1]
        start = len(html.encode("utf-8"))
        tokens.append({"token": text, "start_byte": start, "end_byte": start + len(text.encode("utf-8")),
                       "html_token": is_html})
        html += text + " "

    for tag, text in blocks:
        first = len(tokens)
        add(f"<{tag}>", True)
        for word in text.split():
            add(word, False)
        add(f"</{tag}>", True)
        block_tokens.append((first, len(tokens)))
    html += "</body></html>"

    def span(first: int, end: int) -> dict:  # tokens first .. end - 1
        return {"start_byte": tokens[first]["start_byte"], "end_byte": tokens[end - 1]["end_byte"],
                "start_token": first, "end_token": end}

    annotations = []
    for number, (long_block, shorts, yes_no) in enumerate(annotators):
        long_answer = NO_ANSWER if long_block is None else {**span(*block_tokens[long_block]),
                                                              "candidate_index": long_block}
        short_answers = [span(block_tokens[block][0] + 1 + word, block_tokens[block][0] + 1 + word + count)
                         for block, word, count in shorts]
        annotations.append({"annotation_id": example_id % 10_000 * 10 + number, "long_answer": long_answer,
                            "short_answers": short_answers, "yes_no_answer": yes_no})
    return {"example_id": example_id, "question_text": question, "question_tokens": question.split(),
            "document_title": title, "document_url": f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}",
            "document_html": html, "document_tokens": tokens,
            "long_answer_candidates": [{**span(*bounds), "top_level": True} for bounds in block_tokens],
            "annotations": annotations}


def seed_examples() -> list[dict]:
    """The six examples every copy is made from, one case of the conversion's rules each."""
    none: tuple[None, list, str] = (None, [], "NONE")
    return [
        nq_example(5225754983651766092, "Eiffel Tower", "when was the eiffel tower completed", [
            ("H1", "Eiffel Tower"),
            ("P", "The Eiffel Tower ( French : tour Eiffel ) was completed in 1889 by Gustave Eiffel's company "
                  "&amp; stands 330 m tall on the Champ de Mars in Paris , France ."),
            ("Table", "Height 330 m"),
        ], [(1, [(1, 12, 1)], "NONE"), (1, [(1, 12, 1)], "NONE"), (1, [(1, 28, 1), (1, 30, 1)], "NONE"), none,
            none]),
        nq_example(8811024938123477002, "Tomato", "is a tomato a fruit", [
            ("P", "Tomatoes are botanically fruits , though cooked as vegetables ."),
        ], [(0, [], "YES"), (0, [], "YES"), none, none, none]),
        nq_example(3300000000000000001, "Planets", "which planet is closest to the sun", [
            ("Table", "Mercury Venus Earth"),
        ], [(0, [(0, 0, 1)], "NONE"), (0, [(0, 0, 1)], "NONE"), (0, [], "NONE"), none, none]),
        nq_example(4400000000000000002, "Nile", "which way does the nile flow", [
            ("P", "The Nile flows north ."),
        ], [(0, [(0, 3, 1)], "NONE"), none, none, none, none]),
        nq_example(-7123004588123999001, "Ada Lovelace", "where was ada lovelace born", [
            ("P", "Ada Lovelace was a mathematician ."),
            ("P", "She was born in London in 1815 ."),
        ], [(1, [], "NONE"), (0, [], "NONE"), (1, [(1, 4, 1)], "NONE"), (0, [], "NONE"), none]),
        nq_example(6600000000000000003, "Marie Curie", "where did marie curie study", [
            ("P", "Curie was born in Warsaw . In Warsaw she studied at a secret university ."),
        ], [(0, [(0, 7, 1)], "NONE"), (0, [(0, 7, 1)], "NONE"), none, none, none]),
    ]


def pad_document(example: dict, copy_index: int, target_bytes: int) -> dict:
    """A copy of `example` with filler paragraphs appended to its document until its JSON is about target_bytes."""
    padded = json.loads(json.dumps(example))
    padded["example_id"] = example["example_id"] * 100_000 + copy_index  # unique while copy_index < 100,000
    tokens, candidates = padded["document_tokens"], padded["long_answer_candidates"]
    html_parts = [padded["document_html"]]
    byte = len(padded["document_html"].encode("utf-8"))
    size = len(json.dumps(padded))
    paragraph = 0
    while size < target_bytes:
        start_token, start_byte = len(tokens), byte
        words = [FILLER_WORDS[(copy_index + paragraph + i) % len(FILLER_WORDS)] for i in range(80)]
        for text, is_html in [("<P>", True), *((w, False) for w in words), ("</P>", True)]:
            tokens.append({"token": text, "start_byte": byte, "end_byte": byte + len(text), "html_token": is_html})
            html_parts.append(text + " ")
            byte += len(text) + 1
            size += 70 + len(text) * 2  # the token object plus its text in document_html, roughly
        candidates.append(
            {"start_byte": start_byte, "end_byte": byte - 1, "start_token": start_token, "end_token": len(tokens),
             "top_level": True}
        )
        paragraph += 1
    padded["document_html"] = "".join(html_parts)
    return padded


def write_synthetic_file(path: Path, target_bytes: int, example_bytes: int) -> tuple[int, int]:
    """Write copies of the seed examples until target_bytes of JSON Lines; returns (lines, uncompressed bytes)."""
    originals = seed_examples()
    lines = written = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as handle:
        while written < target_bytes:
            line = json.dumps(pad_document(originals[lines % len(originals)], lines // len(originals),
                                           example_bytes)) + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
            lines += 1
    return lines, written


def child(data_dir: str, cache_dir: str) -> None:
    """Run one conversion (or cached load) and report its figures as one JSON line."""
    import datasets

    from qa_transfer.sources.adapters import convert_named_split

    datasets.disable_progress_bars()
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    dataset, stats = convert_named_split("natural_questions", "validation", data_dir, cache_dir)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_kb": peak_kb, "baseline_kb": baseline_kb, "records_out": len(dataset),
                      "summary": stats.summary()}))


def run_child(data_dir: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(data_dir), str(cache_dir)], env=env, capture_output=True, text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target_mb", type=float, default=220, help="uncompressed size of the synthetic file, MB")
    parser.add_argument("--example_kb", type=float, default=140, help="approximate size of one example, KB")
    parser.add_argument("--child", nargs=2, metavar=("DATA_DIR", "CACHE_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench_nq_"))
    try:
        data_dir, cache_dir = workdir / "nq", workdir / "cache"
        (data_dir / "dev").mkdir(parents=True)
        source = data_dir / "dev" / "nq-dev-00.jsonl.gz"
        started = time.perf_counter()
        lines, uncompressed = write_synthetic_file(source, int(args.target_mb * 1e6), int(args.example_kb * 1e3))
        print(
            f"synthetic NQ file: {lines} examples, {uncompressed / 1e6:.1f} MB uncompressed, "
            f"{source.stat().st_size / 1e6:.1f} MB gzipped (written in {time.perf_counter() - started:.1f} s)"
        )
        first = run_child(data_dir, cache_dir)
        print(
            f"conversion: {first['seconds']:.1f} s wall, {lines / first['seconds']:.0f} source records/s "
            f"({uncompressed / 1e6 / first['seconds']:.1f} MB/s), {first['records_out']} records out; "
            f"peak RSS {first['peak_kb'] / 1024:.0f} MiB (after imports {first['baseline_kb'] / 1024:.0f} MiB)"
        )
        print(f"counts: {first['summary']}")
        arrow_bytes = sum(f.stat().st_size for f in cache_dir.rglob("*.arrow"))
        print(f"Arrow cache: {arrow_bytes / 1e6:.2f} MB")
        second = run_child(data_dir, cache_dir)
        print(f"second load (cached): {second['seconds']:.2f} s wall, peak RSS {second['peak_kb'] / 1024:.0f} MiB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
