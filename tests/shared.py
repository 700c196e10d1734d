"""What many test files share: the repository root and the fixtures' folders, the small windows that keep
tiny-model runs fast, the builders of flat SQuAD 2.0 records and their windows, the check that answers align, and
small file helpers. Plain helpers and constants only: the fixtures are in conftest.py, and running a script is
harness.py's."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

from datasets import Dataset

from qa_transfer.qa.data import FLAT_FEATURES
from qa_transfer.qa.windows import WindowConfig, window_features
from qa_transfer.sources.common import OfficialSource

REPO = Path(__file__).resolve().parent.parent
# Hand-written files in each dataset's official layout (and the hub's), for the adapters' tests.
ADAPTER_FIXTURES = REPO / "tests" / "fixtures" / "adapters"
# run_qa.py / cross_eval.py flags: windows small enough for a tiny model, still several per context.
SMALL_WINDOWS = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16"]


def qa_record(qid: str, question: str, context: str, answer: str | None = None, title: str = "") -> dict:
    """One flat record; `answer` (at its first occurrence in the context) or none: unanswerable."""
    answers = ({"text": [answer], "answer_start": [context.index(answer)]} if answer
               else {"text": [], "answer_start": []})
    return {"id": qid, "title": title, "context": context, "question": question, "answers": answers}


def examples_of(records: list[dict]) -> Dataset:
    return Dataset.from_list(records, features=FLAT_FEATURES)


def windows_of(tokenizer, records: list[dict], config: WindowConfig) -> dict[str, list]:
    """The records' windows, with labels and post-processing columns, as one batch."""
    return window_features(examples_of(records).to_dict(), tokenizer, config, with_labels=True,
                           with_postprocess_columns=True)


def answers_aligned(record: dict) -> bool:
    """Whether each answer text of a flat record is the context's text at its answer_start."""
    answers = record["answers"]
    return all(record["context"][start:start + len(text)] == text
               for text, start in zip(answers["text"], answers["answer_start"]))


def assert_aligned(records: Iterable[dict]) -> None:
    """Every answer of every record aligns; a failure names the record."""
    for record in records:
        assert answers_aligned(record), record["id"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """`records` as JSON Lines at `path` (gzipped when it ends with .gz); the path."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)
    return Path(path)


def read_jsonl(path: Path | str) -> list[dict]:
    """The records of a JSON Lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def gzip_truncated(source: Path, target: Path) -> Path:
    """`source` gzipped into `target` and cut at two thirds: a download or copy that stopped short."""
    packed = gzip.compress(source.read_bytes())
    target.write_bytes(packed[: len(packed) * 2 // 3])
    return target


# A conversion that test_faults.py kills while it writes its cache (in a process of its own, which imports these
# from here), then runs again: its source, and its records, each an unanswerable question.
CONVERSION_SOURCE = OfficialSource("fault_test", {}, convert_file=None, is_official_file=None)


def numbered_record(index: int) -> dict:
    return {"id": f"q{index}", "title": "t", "context": f"context {index}", "question": f"question {index}?",
            "answers": {"text": [], "answer_start": []}}
