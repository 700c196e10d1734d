"""MRQA 2019 shared-task files (`<Dataset>.jsonl.gz`): a header line, then one context per line with its questions.
Files without the header line (such as the samples in the MRQA shared-task repository) are read the same way.

Each question's answers are its `detected_answers`, each placed at its first character span (`char_spans` ends
are inclusive) with the text read from the context there, so that it always aligns; MRQA has no unanswerable
questions, and one whose answers cannot be placed is dropped. The title is the header's dataset name, or the file's
name when there is no header.
Files: `https://s3.us-east-2.amazonaws.com/mrqa/release/v2/{train,dev}/<Dataset>.jsonl.gz`; in --data_dir, every
file under `train/` or `dev/` makes up that split.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from qa_transfer.core.errors import QADataError
from qa_transfer.qa.data import iter_json_lines

from .common import ConversionStats, OfficialSource, flat_record, peek_text, require, span_answer

CONVERSION = "mrqa_2019"
DOWNLOAD_URL = "https://s3.us-east-2.amazonaws.com/mrqa/release/v2"


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


def _file_title(path: str) -> str:
    """`dev/NewsQA.jsonl.gz` -> `NewsQA`: the title of a file without a header line."""
    name = os.path.basename(path)
    for suffix in (".gz", ".jsonl", ".json"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from one MRQA jsonl(.gz) file, streamed line by line."""
    title = _file_title(path)
    for line_no, obj in iter_json_lines(path):
        where = f"{path}: line {line_no}"
        if isinstance(obj, dict) and "header" in obj:
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
    # The header line is short; without one, the first context line holds its questions' detected answers (before
    # its token lists, which can be long).
    return '"header"' in peek_text(path, size=4096) or '"detected_answers"' in peek_text(path)


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
        f"{DOWNLOAD_URL}/{{train,dev}}/ and pass --data_dir DIR (holding train/ and dev/), or --train_file / "
        "--validation_file FILE.jsonl.gz"
    ),
    options={"answer": "first char span per detected answer"},
    conversion=CONVERSION,
)
