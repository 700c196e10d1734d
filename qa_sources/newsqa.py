"""NewsQA, converted as Sen & Saffari (2020) did: the story text is the context and the answer is the first answer
range, mapped back to the story's characters; a question without one is unanswerable.

Official files, built with Maluuba's tools (https://github.com/Maluuba/newsqa):
- the split CSVs `split_data/{train,dev,test}.csv` (`story_id, story_text, question, answer_token_ranges`; the
  paper's source): token ranges `start:end` (end exclusive) over the whitespace tokens of `story_text`, several
  separated by commas, `-1:-1` or nothing when no answer was found;
- `combined-newsqa-data-v1.json`: character ranges in the `consensus` answer (`{"s", "e"}`, end exclusive, may
  end on whitespace), or `{"noAnswer": true}`, or `{"badQuestion": true}` (such questions are dropped); each
  story's `type` says its split.
Record ids are `<story>_q<n>`, n counting the story's questions in file order, so they are the same on every run.
There is no loadable hub copy with the original questions (MRQA's NewsQA keeps only answerable ones).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator

from qa_data import QADataError

from .common import (
    ConversionStats,
    OfficialSource,
    flat_record,
    iter_csv_rows,
    peek_text,
    read_json_document,
    require,
    span_answer,
    whitespace_token_spans,
)

CSV_COLUMNS = ("story_id", "story_text", "question", "answer_token_ranges")
JSON_STORY_TYPES = {"train": "train", "validation": "dev", "test": "test"}
_RANGE = re.compile(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*")


def story_key(story_id: str) -> str:
    """A short stable name for a story: `./cnn/stories/<hash>.story` -> `<hash>`."""
    name = os.path.basename(story_id.strip())
    return name[: -len(".story")] if name.endswith(".story") else name


def first_token_range(ranges: str, where: str) -> tuple[int, int] | None:
    """The first `start:end` of an `answer_token_ranges` cell; None when there is none or it is empty."""
    first = ranges.split(",")[0].strip()
    if first in ("", "None", "nan"):
        return None
    match = _RANGE.fullmatch(first)
    if match is None:
        raise QADataError(f"{where}: answer_token_ranges {ranges!r} is not of the form start:end[,start:end...]")
    start, end = int(match.group(1)), int(match.group(2))
    return (start, end) if 0 <= start < end else None


def _csv_records(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    question_counts: Counter = Counter()
    for row_no, row in iter_csv_rows(path, CSV_COLUMNS):
        where = f"{path}: row {row_no}"
        story, context = story_key(row["story_id"]), row["story_text"]
        record_id = f"{story}_q{question_counts[story]}"
        question_counts[story] += 1
        token_range = first_token_range(row["answer_token_ranges"], f"{where} ({record_id})")
        answers = []
        if token_range is None:
            stats.note("unanswerable (no or empty answer range)")
        else:
            tokens = whitespace_token_spans(context, limit=token_range[1])
            if token_range[1] > len(tokens):
                raise QADataError(
                    f"{where} ({record_id}): answer tokens {token_range[0]}:{token_range[1]} lie beyond the story's "
                    f"{len(tokens)} tokens"
                )
            answers.append((context[tokens[token_range[0]][0] : tokens[token_range[1] - 1][1]], tokens[token_range[0]][0]))
        yield stats.keep(flat_record(record_id, story, context, row["question"], answers))


def _json_records(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    obj = read_json_document(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise QADataError(f"{path}: not a NewsQA file: expected {{'data': [{{'storyId', 'text', 'questions'}}]}}")
    wanted_type = JSON_STORY_TYPES[split] if split else None
    for s_index, story_obj in enumerate(obj["data"]):
        where = f"{path}: data[{s_index}]"
        story = story_key(require(story_obj, "storyId", where))
        if wanted_type is not None and require(story_obj, "type", where) != wanted_type:
            continue
        context = require(story_obj, "text", where)
        for q_index, question in enumerate(require(story_obj, "questions", where)):
            record_id = f"{story}_q{q_index}"
            q_where = f"{path}: question {record_id!r}"
            consensus = require(question, "consensus", q_where)
            if consensus.get("badQuestion"):
                stats.drop("bad question by consensus")
                continue
            answers = []
            if consensus.get("noAnswer"):
                stats.note("unanswerable (no answer by consensus)")
            else:
                start, end = int(require(consensus, "s", q_where)), int(require(consensus, "e", q_where))
                if end > len(context):  # Maluuba's own loader clips such ends too
                    stats.repair("answer end clipped to the story's end")
                    end = len(context)
                answer = span_answer(context, start, end) if 0 <= start < end else None
                if answer is None:
                    stats.note("unanswerable (no or empty answer range)")
                else:
                    answers.append(answer)
            yield stats.keep(flat_record(record_id, story, context, require(question, "q", q_where), answers))


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from a split CSV, or from `combined-newsqa-data-v1.json` (only the stories of `split` when given)."""
    stem = path[:-3] if path.endswith(".gz") else path
    if stem.endswith(".csv"):
        return _csv_records(path, split, stats)
    return _json_records(path, split, stats)


def is_official_file(path: str) -> bool:
    stem = path[:-3] if path.endswith(".gz") else path
    return stem.endswith(".csv") or '"storyId"' in peek_text(path)


SOURCE = OfficialSource(
    name="newsqa",
    split_files={
        "train": ("split_data/train.csv", "train.csv", "combined-newsqa-data-v1.json"),
        "validation": ("split_data/dev.csv", "dev.csv", "combined-newsqa-data-v1.json"),
        "test": ("split_data/test.csv", "test.csv", "combined-newsqa-data-v1.json"),
    },
    convert_file=convert_file,
    is_official_file=is_official_file,
    no_hub_help=(
        "NewsQA has no loadable hub copy with its unanswerable questions (CNN's terms forbid redistributing the "
        "stories). Build it with https://github.com/Maluuba/newsqa and pass --data_dir DIR (holding split_data/ or "
        "combined-newsqa-data-v1.json), or --train_file split_data/train.csv / --validation_file split_data/dev.csv"
    ),
    options={"answer": "first range"},
)
