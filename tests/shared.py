"""What many test files share: the repository root, the small windows that keep tiny-model runs fast, and the
builders of flat SQuAD 2.0 records and their windows."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from qa_transfer.qa.data import FLAT_FEATURES
from qa_transfer.qa.windows import WindowConfig, window_features

REPO = Path(__file__).resolve().parent.parent
# run_qa.py / cross_eval.py flags: windows small enough for a tiny model, still several per context.
SMALL_WINDOWS = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16"]


def qa_record(qid: str, question: str, context: str, answer: str | None = None, title: str = "") -> dict:
    """One flat record; `answer` (at its first occurrence in the context) or none: unanswerable."""
    answers = {"text": [answer], "answer_start": [context.index(answer)]} if answer else {"text": [], "answer_start": []}
    return {"id": qid, "title": title, "context": context, "question": question, "answers": answers}


def examples_of(records: list[dict]) -> Dataset:
    return Dataset.from_list(records, features=FLAT_FEATURES)


def windows_of(tokenizer, records: list[dict], config: WindowConfig) -> dict[str, list]:
    """The records' windows, with labels and post-processing columns, as one batch."""
    return window_features(examples_of(records).to_dict(), tokenizer, config, with_labels=True,
                           with_postprocess_columns=True)
