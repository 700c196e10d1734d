"""Benchmark: convert a large synthetic Natural Questions file (original layout, `.jsonl.gz`, 200 MB or more
uncompressed) through the natural_questions adapter, which streams records into the Arrow cache, and print the
wall time, records/s and peak RSS of the conversion, then the time of a second, cached load.

The records are the hand-written dev fixtures (tests/fixtures/adapters/nq/dev/nq-dev-00.jsonl), each copy with a
new example_id and padded, after its annotated spans, with filler paragraphs that vary from copy to copy, so that
every copy converts like its original while documents reach a realistic size (the real train set averages about
140 KB per example). The conversion runs in a child process so that its peak RSS is its own. Everything is written
to a temporary folder that is removed afterwards.

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

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "adapters" / "nq" / "dev" / "nq-dev-00.jsonl"
FILLER_WORDS = ["the", "river", "city", "was", "built", "by", "people", "who", "crossed", "the", "old", "bridge", "every", "year", "to", "reach", "the", "capital"]


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
            {"start_byte": start_byte, "end_byte": byte - 1, "start_token": start_token, "end_token": len(tokens), "top_level": True}
        )
        paragraph += 1
    padded["document_html"] = "".join(html_parts)
    return padded


def write_synthetic_file(path: Path, target_bytes: int, example_bytes: int) -> tuple[int, int]:
    """Write copies of the fixture examples until target_bytes of JSON Lines; returns (lines, uncompressed bytes)."""
    originals = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = written = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as handle:
        while written < target_bytes:
            line = json.dumps(pad_document(originals[lines % len(originals)], lines // len(originals), example_bytes)) + "\n"
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
    print(json.dumps({"seconds": seconds, "peak_kb": peak_kb, "baseline_kb": baseline_kb, "records_out": len(dataset), "summary": stats.summary()}))


def run_child(data_dir: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(data_dir), str(cache_dir)], env=env, capture_output=True, text=True, check=True
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
