"""Loading extractive-QA data into one flat schema, with validation that names the file and record.

Every source ends up as flat SQuAD 2.0 records:

    {"id": str, "title": str, "context": str, "question": str,
     "answers": {"text": [str, ...], "answer_start": [int, ...]}}

Empty answer lists mean "unanswerable". Local files may be the official nested SQuAD JSON layout
(`{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`), a JSON list of flat records, or JSON Lines
of flat records, optionally gzip-compressed. Named datasets (`--dataset squad_v2`, `trivia_qa`, ...) come from
the adapters in `sources/adapters.py`, which produce the same records.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, Features, List, Value

from qa_transfer.core.columns import arrow_column, list_lengths
from qa_transfer.core.errors import QADataError

logger = logging.getLogger("qa_transfer.qa.data")

FLAT_FEATURES = Features(
    {
        "id": Value("string"),
        "title": Value("string"),
        "context": Value("string"),
        "question": Value("string"),
        "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))},
    }
)


@dataclass
class RecordStats:
    """What loading saw and changed, reported once per split."""

    questions: int = 0
    answerable: int = 0
    unanswerable: int = 0
    unlabelled: int = 0  # without 'answers' at all (a --test_file to predict): neither of the above
    repaired_offsets: int = 0
    dropped: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = f"{self.answerable} answerable, {self.unanswerable} unanswerable"
        if self.unlabelled:
            counts = "unlabelled" if self.unlabelled == self.questions else f"{counts}, {self.unlabelled} unlabelled"
        text = (f"{self.questions} questions ({counts}), {self.repaired_offsets} answer offsets repaired, "
                f"{self.dropped} dropped")
        return text + "".join(f"; {note}" for note in self.notes)


# Reading errors that mean "this file is broken": bad UTF-8, a truncated or corrupt gzip stream, an unreadable file.
UNREADABLE = (UnicodeDecodeError, EOFError, OSError, zlib.error)


def open_text(path: str | os.PathLike) -> Any:
    """Open a text file, transparently gunzipping `*.gz`."""
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def require_file(path: str | os.PathLike) -> None:
    """A QADataError naming `path` unless it exists."""
    if not os.path.exists(path):
        raise QADataError(f"{path}: file not found")


def read_json_document(path: str) -> Any:
    """Parse one JSON file (gzip-aware), or raise a QADataError naming the file."""
    require_file(path)
    try:
        with open_text(path) as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise QADataError(
            f"{path}: not valid JSON at line {err.lineno} column {err.colno} ({err.msg}); is the file truncated?"
        ) from None
    except UNREADABLE as err:
        raise QADataError(f"{path}: cannot be read as UTF-8 text ({err})") from None


def iter_json_lines(path: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) from a JSON Lines file (gzip-aware), streaming."""
    require_file(path)
    line_no = 0
    try:
        with open_text(path) as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield line_no, json.loads(line)
                except json.JSONDecodeError as err:
                    raise QADataError(
                        f"{path}: line {line_no}: not valid JSON ({err.msg}); is the file truncated?") from None
    except UNREADABLE as err:
        raise QADataError(f"{path}: unreadable after line {line_no}: truncated or corrupt ({err})") from None


def unique_occurrence(context: str, text: str) -> int | None:
    """Where `text` occurs in `context` when it occurs exactly once (an answer offset can be repaired to it)."""
    found = context.find(text) if text else -1
    return found if found >= 0 and context.find(text, found + 1) < 0 else None


def _is_nested_squad(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("data"), list)
        and all(isinstance(article, dict) and "paragraphs" in article for article in obj["data"])
    )


def iter_nested_squad(obj: dict, source: str) -> Iterator[dict]:
    """Flatten the official SQuAD layout. Unanswerable (`is_impossible`) questions get empty answers."""
    for a_idx, article in enumerate(obj["data"]):
        title = article.get("title", "")
        if not isinstance(article["paragraphs"], list):
            raise QADataError(f"{source}: article {a_idx} ({title!r}): 'paragraphs' is not a list")
        for p_idx, paragraph in enumerate(article["paragraphs"]):
            where = f"{source}: article {a_idx} ({title!r}) paragraph {p_idx}"
            if not isinstance(paragraph, dict) or "context" not in paragraph or "qas" not in paragraph:
                raise QADataError(f"{where}: missing field 'context' or 'qas'")
            for qa in paragraph["qas"]:
                if not isinstance(qa, dict):
                    raise QADataError(f"{where}: a question entry is not an object")
                for key in ("id", "question"):
                    if key not in qa:
                        raise QADataError(f"{where}, question {qa.get('id', '?')!r}: missing field {key!r}")
                if qa.get("is_impossible", False):
                    answers = []
                elif "answers" in qa:
                    answers = qa["answers"]
                else:
                    answers = None  # a test file: no gold answers
                record = {"id": qa["id"], "title": title, "context": paragraph["context"], "question": qa["question"]}
                if answers is not None:
                    try:
                        record["answers"] = {
                            "text": [answer["text"] for answer in answers],
                            "answer_start": [answer["answer_start"] for answer in answers],
                        }
                    except (TypeError, KeyError) as err:
                        raise QADataError(
                            f"{where}, question {qa['id']!r}: each answer needs 'text' and 'answer_start' ({err!r})"
                        ) from None
                yield record


def read_raw_records(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """Yield (where, record) from a nested SQuAD JSON, a JSON list of flat records, or JSON Lines."""
    path = str(path)
    stem = path[:-3] if path.endswith(".gz") else path
    if stem.endswith(".jsonl"):
        for line_no, record in iter_json_lines(path):
            yield f"{path}: line {line_no}", record
        return
    obj = read_json_document(path)
    if _is_nested_squad(obj):
        for record in iter_nested_squad(obj, path):
            yield f"{path}: question {record['id']!r}", record
    elif isinstance(obj, list) or (isinstance(obj, dict) and isinstance(obj.get("data"), list)):
        records = obj if isinstance(obj, list) else obj["data"]
        for index, record in enumerate(records):
            yield f"{path}: record {index}", record
    else:
        raise QADataError(
            f"{path}: not a QA file: expected the SQuAD layout {{'data': [{{'paragraphs': ...}}]}}, "
            "a JSON list of records, or JSON Lines"
        )


def check_record(record: Any, where: str, require_answers: bool, repair_offsets: bool, stats: RecordStats,
                 name_id: bool = True) -> dict:
    """Validate one flat record and return it normalised; raise QADataError naming `where` (and the record's id,
    unless `name_id` is false: an id made by the caller, not the user's) otherwise."""
    if not isinstance(record, dict):
        raise QADataError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    for key in ("id", "context", "question"):
        if key not in record:
            raise QADataError(f"{where}: missing field {key!r}")
        if not isinstance(record[key], (str, int)):
            raise QADataError(f"{where}: field {key!r} must be a string")
    if name_id and repr(str(record["id"])) not in where:
        where = f"{where} (id {str(record['id'])!r})"
    context, question = str(record["context"]), str(record["question"])
    if not context.strip():
        raise QADataError(f"{where}: empty context")
    if not question.strip():
        raise QADataError(f"{where}: empty question")
    answers = record.get("answers")
    unlabelled = answers is None
    if unlabelled:
        if require_answers:
            raise QADataError(f"{where}: missing field 'answers' (use empty lists for an unanswerable question)")
        answers = {"text": [], "answer_start": []}
    elif isinstance(answers, list):  # SQuAD-style list of {"text", "answer_start"}
        try:
            answers = {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]}
        except (TypeError, KeyError):
            raise QADataError(f"{where}: each answer needs 'text' and 'answer_start'") from None
    if not isinstance(answers, dict) or "text" not in answers or "answer_start" not in answers:
        raise QADataError(f"{where}: 'answers' must hold 'text' and 'answer_start'")
    texts, starts = list(answers["text"]), list(answers["answer_start"])
    if len(texts) != len(starts):
        raise QADataError(f"{where}: {len(texts)} answer texts but {len(starts)} answer_start values")
    for i, (text, start) in enumerate(zip(texts, starts)):
        if not isinstance(text, str) or not text:
            raise QADataError(f"{where}: answer {i} has an empty or non-string text")
        if not isinstance(start, int) or isinstance(start, bool):
            raise QADataError(f"{where}: answer {i} has a non-integer answer_start {start!r}")
        if context[start : start + len(text)] == text:
            continue
        found = unique_occurrence(context, text)
        unique = found is not None
        if repair_offsets and unique:
            starts[i] = found
            stats.repaired_offsets += 1
            continue
        hint = (
            " (it occurs once in the context: pass --repair_answer_offsets to fix such offsets)"
            if unique
            else " (the text does not occur exactly once in the context, so it cannot be repaired)"
        )
        raise QADataError(
            f"{where}: answer {i} {text!r} is not at answer_start {start}: the context there reads "
            f"{context[start:start + len(text)]!r}{hint}"
        )
    stats.questions += 1
    if unlabelled:
        stats.unlabelled += 1
    elif texts:
        stats.answerable += 1
    else:
        stats.unanswerable += 1
    return {
        "id": str(record["id"]),
        "title": str(record.get("title") or ""),
        "context": context,
        "question": question,
        "answers": {"text": texts, "answer_start": starts},
    }


def iter_checked_records(
    records: Iterable[tuple[str, Any]], source: str, require_answers: bool, repair_offsets: bool, stats: RecordStats
) -> Iterator[dict]:
    """Check every (where, record) pair as it comes, counting into `stats`; ids must be unique."""
    seen: dict[str, str] = {}
    for where, record in records:
        flat = check_record(record, where, require_answers, repair_offsets, stats)
        if flat["id"] in seen:
            raise QADataError(f"{where}: duplicate id {flat['id']!r} (first seen at {seen[flat['id']]})")
        seen[flat["id"]] = where
        yield flat
    if not seen:
        raise QADataError(f"{source}: no questions found")


def validate_records(
    records: Iterable[tuple[str, Any]], source: str, require_answers: bool = True, repair_offsets: bool = False
) -> tuple[list[dict], RecordStats]:
    """Check every (where, record) pair; ids must be unique. Returns the records and what was seen."""
    stats = RecordStats()
    return list(iter_checked_records(records, source, require_answers, repair_offsets, stats)), stats


def load_qa_file(path: str | os.PathLike, require_answers: bool = True, repair_offsets: bool = False) -> Dataset:
    """Read and validate one local QA file into a flat `datasets.Dataset`."""
    records, stats = validate_records(read_raw_records(path), str(path), require_answers, repair_offsets)
    logger.info("%s: %s", path, stats.summary())
    return Dataset.from_list(records, features=FLAT_FEATURES)


def validate_dataset(dataset: Dataset, source: str, require_answers: bool = True,
                     repair_offsets: bool = False) -> Dataset:
    """Validate a dataset already in the flat schema (e.g. from the hub); returns it, repaired if asked.

    Rows are checked one at a time and not kept, so a large converted split (TriviaQA, NQ) stays in its Arrow
    file; only when offsets were repaired is the split rewritten, again through Arrow (`Dataset.map`).
    """
    stats = RecordStats()
    rows = ((f"{source}: row {i}", row) for i, row in enumerate(dataset))
    for _ in iter_checked_records(rows, source, require_answers, repair_offsets, stats):
        pass
    logger.info("%s: %s", source, stats.summary())
    if not stats.repaired_offsets:
        return dataset

    def repaired(row: dict, index: int) -> dict:
        # map() hands over a LazyRow; check_record wants a plain dict, as read from a file.
        return check_record(dict(row), f"{source}: row {index}", require_answers, True, RecordStats())

    extra_columns = [name for name in dataset.column_names if name not in FLAT_FEATURES]
    return dataset.map(repaired, with_indices=True, features=FLAT_FEATURES, remove_columns=extra_columns,
                       desc="Repairing answer offsets")


def select_questions(dataset: Dataset, max_samples: int | None, fraction: float | None, strategy: str,
                     seed: int) -> Dataset:
    """Pick a deterministic subset of questions (not windows): the first N, or N drawn with `seed`."""
    count = len(dataset)
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"a sample fraction must be in (0, 1], got {fraction}")
        count = max(1, round(count * fraction))
    if max_samples is not None:
        count = min(count, max_samples)
    if count >= len(dataset):
        return dataset
    if strategy == "first":
        return dataset.select(range(count))
    if strategy == "random":
        return dataset.shuffle(seed=seed).select(range(count)).flatten_indices()
    raise ValueError(f"unknown subset strategy {strategy!r}: use 'first' or 'random'")


def oversample_unanswerable(dataset: Dataset, copies: int) -> Dataset:
    """Each unanswerable question `copies` times (the copies follow the original questions), to correct a training
    set whose share of unanswerable questions is far below the evaluation data's; 1 leaves the set as it is."""
    if copies < 1:
        raise ValueError(f"--oversample_unanswerable must be at least 1, got {copies}")
    if copies == 1:
        return dataset
    unanswerable = np.nonzero(answer_counts(dataset) == 0)[0].tolist()
    return dataset.select(list(range(len(dataset))) + unanswerable * (copies - 1)).flatten_indices()


def answer_counts(dataset: Dataset) -> np.ndarray:
    """How many gold answers each question has (0: unanswerable), read from Arrow in one go."""
    return list_lengths(arrow_column(dataset, "answers").field("text"))


def has_unanswerable(dataset: Dataset) -> bool:
    return bool((answer_counts(dataset) == 0).any()) if "answers" in dataset.column_names else False


SPLIT_ALIASES = {"train": "train", "validation": "validation", "eval": "validation", "dev": "validation",
                 "test": "test"}
