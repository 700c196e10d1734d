"""Steps every dataset reader shares: reading source files with errors that name the file and record, placing
answers in a context, building flat records, and counting what was kept, repaired or dropped."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from qa_transfer.core.errors import QADataError
from qa_transfer.qa.data import UNREADABLE, RecordStats, require_file


@dataclass
class ConversionStats(RecordStats):
    """RecordStats plus a count per reason for every drop, repair and note, so a summary says why."""

    reasons: Counter = field(default_factory=Counter)

    def keep(self, record: dict) -> dict:
        self.questions += 1
        if record["answers"]["text"]:
            self.answerable += 1
        else:
            self.unanswerable += 1
        return record

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.reasons[f"dropped ({reason})"] += 1

    def repair(self, reason: str) -> None:
        self.repaired_offsets += 1
        self.reasons[f"repaired ({reason})"] += 1

    def note(self, reason: str) -> None:
        self.reasons[reason] += 1

    def summary(self) -> str:
        return super().summary() + "".join(f"; {count} {reason}" for reason, count in sorted(self.reasons.items()))

    def to_json(self) -> dict:
        # asdict() would rebuild the Counter from its (key, count) pairs, counting the pairs themselves.
        return {**asdict(replace(self, reasons=Counter())), "reasons": dict(self.reasons)}

    @classmethod
    def from_json(cls, obj: dict) -> ConversionStats:
        return cls(**{**obj, "reasons": Counter(obj.get("reasons", {}))})


@dataclass(frozen=True)
class HubCopy:
    """A loadable hub copy of a dataset, streamed row by row into the same conversion as the official files."""

    repo_id: str
    config: str | None
    # (rows, label for error messages, stats) -> flat records
    convert_rows: Callable[[Iterable[dict], str, ConversionStats], Iterator[dict]]
    # the only columns the conversion reads (Parquet reads just these); None reads every column
    columns: tuple[str, ...] | None = None


# The conversion name of every dataset converted by the rules of the paper's converter (Sen & Saffari, EMNLP 2020:
# amazon-science/qa-dataset-converter); each other conversion has its own name. Recorded in qa_run_info.json and
# matrix.json, so a result says which data it came from.
PAPER_CONVERSION = "sen_saffari_2020"


@dataclass(frozen=True)
class RemoteFiles:
    """Where a dataset's official files can be downloaded from without a hub copy: `base_url` + each file name.

    The environment variable `base_url_env`, when set, replaces `base_url` (a mirror, or a local server in tests)."""

    base_url: str
    base_url_env: str
    # split -> file names under the base URL; each is downloaded as is and converted like a file in --data_dir
    split_files: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class OfficialSource:
    """How one dataset's official files, and its hub copy if any, become flat records."""

    name: str
    # split -> glob patterns under --data_dir, tried in order; every file the first matching pattern finds is read
    split_files: dict[str, tuple[str, ...]]
    # (path, split or None for "every split in the file", stats) -> flat records
    convert_file: Callable[[str, str | None, ConversionStats], Iterator[dict]]
    # whether a file is in this dataset's official layout (rather than already SQuAD-format)
    is_official_file: Callable[[str], bool]
    hub: HubCopy | None = None
    # why there is no hub copy, and which official file to download instead
    no_hub_help: str = ""
    # conversion settings; part of the cache key
    options: dict = field(default_factory=dict)
    # other paths a file's conversion reads (e.g. TriviaQA's evidence folder); part of the cache key
    related_paths: Callable[[str], list[str]] = lambda path: []
    # which rules produced the records: the paper's converter unless this source is a named alternative
    conversion: str = PAPER_CONVERSION
    # the official files' public download location, for datasets with no loadable hub copy
    remote: RemoteFiles | None = None
    # other layouts accepted for this dataset's files given one by one (--train_file ...), tried after this one
    file_routes: tuple[OfficialSource, ...] = ()

    def source_for_file(self, path: str) -> OfficialSource | None:
        """The source whose layout `path` is in (this one first, then `file_routes`); None for SQuAD-format files."""
        for candidate in (self, *self.file_routes):
            if candidate.is_official_file(path):
                return candidate
        return None


def require(obj: Any, key: str, where: str) -> Any:
    """obj[key], or a QADataError naming the record when the field is missing."""
    if not isinstance(obj, dict):
        raise QADataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        raise QADataError(f"{where}: missing field {key!r}")
    return obj[key]


def rows_of(value: Any) -> list[dict]:
    """A list of dicts from either layout: official files hold lists of objects, hub `Sequence` features a dict of
    lists."""
    if isinstance(value, dict):
        columns = list(value)
        count = len(value[columns[0]]) if columns else 0
        return [{column: value[column][i] for column in columns} for i in range(count)]
    return list(value)


def iter_csv_rows(path: str, required_columns: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """Yield (row number, row) from a CSV file with a header (gzip-aware), checking the columns first."""
    require_file(path)
    # News stories can exceed the csv module's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    row_no = 0
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in required_columns if column not in (reader.fieldnames or [])]
            if missing:
                raise QADataError(f"{path}: header lacks column(s) {', '.join(missing)} (found {reader.fieldnames})")
            for row_no, row in enumerate(reader, start=1):
                if None in row or any(value is None for value in row.values()):
                    raise QADataError(f"{path}: row {row_no} (line {reader.line_num}): wrong number of fields")
                yield row_no, row
    except csv.Error as err:
        raise QADataError(f"{path}: row {row_no + 1}: malformed CSV ({err})") from None
    except UNREADABLE as err:
        raise QADataError(f"{path}: unreadable after row {row_no}: truncated or corrupt ({err})") from None


def peek_text(path: str, size: int = 256 * 1024) -> str:
    """Up to the first `size` bytes of a (possibly gzipped) text file, decoded: as much as reads cleanly, in small
    steps, so that a truncated file still shows its layout."""
    head = bytearray()
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as handle:
            while len(head) < size:
                chunk = handle.read(4096)
                if not chunk:
                    break
                head += chunk
    except UNREADABLE:
        pass
    return head[:size].decode("utf-8", errors="ignore")


def span_answer(context: str, start: int, end: int) -> tuple[str, int] | None:
    """The answer context[start:end] without surrounding whitespace, as (text, start); None when blank."""
    raw = context[start:end]
    text = raw.strip()
    if not text:
        return None
    return text, start + (len(raw) - len(raw.lstrip()))


def flat_record(record_id: str, title: str, context: str, question: str, answers: Iterable[tuple[str, int]]) -> dict:
    """One flat SQuAD 2.0 record; answers are (text, answer_start) pairs, duplicates removed, order kept."""
    unique = list(dict.fromkeys(answers))
    return {
        "id": record_id,
        "title": title,
        "context": context,
        "question": question,
        "answers": {"text": [text for text, _ in unique], "answer_start": [start for _, start in unique]},
    }
