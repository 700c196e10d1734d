"""MRQA 2019 shared-task files (`<Dataset>.jsonl.gz`): a header line, then one context per line with its questions.

Each question's answers are its `detected_answers`, each placed at its first character span (`char_spans` ends
are inclusive) with the text read from the context there, so that it always aligns; MRQA has no unanswerable
questions, and one whose answers cannot be placed is dropped. The title is the header's dataset name.
Files: `https://s3.us-east-2.amazonaws.com/mrqa/release/v2/{train,dev}/<Dataset>.jsonl.gz`; in --data_dir, every
file under `train/` or `dev/` makes up that split.
"""

from __future__ import annotations

from collections.abc import Iterator

from qa_data import QADataError

from .common import ConversionStats, OfficialSource, flat_record, iter_json_lines, peek_text, require, span_answer


def _placed_answers(qa: dict, context: str, where: str, stats: ConversionStats) -> list[tuple[str, int]]:
    answers = []
    for detected in require(qa, "detected_answers", where):
        spans = require(detected, "char_spans", where)
        if not spans:
            continue
        try:
            start, end_inclusive = (int(value) for value in spans[0])
        except (TypeError, ValueError):
            raise QADataError(f"{where}: char_spans {spans!r} is not a list of [start, end] pairs") from None
        answer = span_answer(context, start, end_inclusive + 1)
        if answer is None:
            continue
        if answer[0] != detected.get("text"):
            stats.note("answer text taken from the context span (differs from detected text)")
        answers.append(answer)
    return answers


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from one MRQA jsonl(.gz) file, streamed line by line."""
    title = ""
    for line_no, obj in iter_json_lines(path):
        where = f"{path}: line {line_no}"
        if "header" in obj:
            title = require(obj["header"], "dataset", where)
            continue
        context = require(obj, "context", where)
        for qa in require(obj, "qas", where):
            qid = require(qa, "qid", where)
            q_where = f"{where} (question {qid!r})"
            answers = _placed_answers(qa, context, q_where, stats)
            if not answers:
                stats.drop("no detected answer could be placed in the context")
                continue
            yield stats.keep(flat_record(str(qid), title, context, require(qa, "question", q_where), answers))


def is_official_file(path: str) -> bool:
    return '"header"' in peek_text(path, size=4096)


SOURCE = OfficialSource(
    name="mrqa",
    split_files={
        "train": ("train/*.jsonl.gz", "train/*.jsonl"),
        "validation": ("dev/*.jsonl.gz", "dev/*.jsonl"),
    },
    convert_file=convert_file,
    is_official_file=is_official_file,
    no_hub_help=(
        "the mrqa adapter reads MRQA 2019 files only: download <Dataset>.jsonl.gz from "
        "https://s3.us-east-2.amazonaws.com/mrqa/release/v2/{train,dev}/ and pass --data_dir DIR (holding train/ and "
        "dev/), or --train_file / --validation_file FILE.jsonl.gz"
    ),
    options={"answer": "first char span per detected answer"},
)
