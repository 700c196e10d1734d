"""TriviaQA, Wikipedia domain, reading-comprehension setting, converted as Sen & Saffari (2020) did.

One example per (question, evidence document), id `QuestionId--Filename` (TriviaQA's own convention); the context
is the first 800 whitespace tokens of the document, kept as an exact prefix of its text; the answer is the first
of the answer's aliases, then normalised aliases, that occurs in that context (first occurrence); none occurs, the
example is unanswerable.

Official files: `qa/wikipedia-{train,dev}.json` and the `evidence/wikipedia/` folder of `triviaqa-rc.tar.gz`.
Hub: `mandarjoshi/trivia_qa`, config `rc.wikipedia`, whose `entity_pages.wiki_context` holds the same documents.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from qa_data import QADataError

from .common import (
    ConversionStats,
    HubCopy,
    OfficialSource,
    flat_record,
    peek_text,
    read_json_document,
    require,
    rows_of,
    whitespace_token_spans,
)

CONTEXT_TOKENS = 800


@dataclass
class EvidenceDocument:
    filename: str
    title: str
    read_text: Callable[[], str]  # read lazily: only one document is held at a time


@dataclass
class TriviaQuestion:
    """The fields the conversion needs, the same whether they came from an official file or the hub."""

    question_id: str
    question: str
    aliases: list[str]  # the answer's aliases, then its normalised aliases, in that order
    documents: list[EvidenceDocument]


def leading_tokens(text: str, count: int) -> str:
    """The prefix of `text` that ends with its `count`-th whitespace-separated token (all of it if shorter)."""
    spans = whitespace_token_spans(text, limit=count)
    return text[: spans[-1][1]] if spans else ""


def first_alias_in(context: str, aliases: Iterable[str]) -> tuple[str, int] | None:
    for alias in aliases:
        if alias:
            found = context.find(alias)
            if found >= 0:
                return alias, found
    return None


def question_records(question: TriviaQuestion, stats: ConversionStats, context_tokens: int = CONTEXT_TOKENS) -> Iterator[dict]:
    """The flat records of one question: one per evidence document."""
    seen = set()
    for document in question.documents:
        if document.filename in seen:
            stats.drop("evidence document listed twice for one question")
            continue
        seen.add(document.filename)
        context = leading_tokens(document.read_text(), context_tokens)
        if not context:
            stats.drop("empty evidence document")
            continue
        answer = first_alias_in(context, question.aliases)
        record_id = f"{question.question_id}--{document.filename}"
        yield stats.keep(flat_record(record_id, document.title, context, question.question, [answer] if answer else []))


def find_evidence_dir(question_file: str) -> str:
    """The `evidence/wikipedia` folder that sits beside the question file or one level up (the archive's layout)."""
    here = os.path.dirname(os.path.abspath(question_file))
    candidates = [
        os.path.join(here, "evidence", "wikipedia"),
        os.path.join(os.path.dirname(here), "evidence", "wikipedia"),
    ]
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate
    raise QADataError(
        f"{question_file}: no TriviaQA evidence folder found (looked for {' and '.join(candidates)}); "
        "unpack triviaqa-rc.tar.gz so that qa/ and evidence/ sit side by side"
    )


def _evidence_reader(path: str, where: str) -> Callable[[], str]:
    def read() -> str:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            raise QADataError(f"{where}: evidence file {path} not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise QADataError(f"{where}: evidence file {path} cannot be read as UTF-8 text ({err})") from None

    return read


def _official_question(item: dict, where: str, evidence_dir: str) -> TriviaQuestion:
    answer = require(item, "Answer", where)
    documents = []
    for page in require(item, "EntityPages", where):
        filename = require(page, "Filename", where)
        documents.append(
            EvidenceDocument(filename, page.get("Title", ""), _evidence_reader(os.path.join(evidence_dir, filename), where))
        )
    return TriviaQuestion(
        question_id=str(require(item, "QuestionId", where)),
        question=require(item, "Question", where),
        aliases=list(require(answer, "Aliases", where)) + list(answer.get("NormalizedAliases", [])),
        documents=documents,
    )


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from an official question file (e.g. `qa/wikipedia-dev.json`) and its evidence folder."""
    obj = read_json_document(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("Data"), list):
        raise QADataError(f"{path}: not a TriviaQA question file: expected {{'Data': [...], 'Domain': ...}}")
    evidence_dir = find_evidence_dir(path)
    for index, item in enumerate(obj["Data"]):
        question_id = item.get("QuestionId") if isinstance(item, dict) else None
        where = f"{path}: question {question_id!r}" if question_id else f"{path}: Data[{index}]"
        yield from question_records(_official_question(item, where, evidence_dir), stats)


def convert_hub_rows(rows: Iterable[dict], label: str, stats: ConversionStats) -> Iterator[dict]:
    """Records from `mandarjoshi/trivia_qa` rc.wikipedia rows (document text in `entity_pages.wiki_context`)."""
    for index, row in enumerate(rows):
        where = f"{label}: row {index}"
        answer = require(row, "answer", where)
        documents = [
            EvidenceDocument(
                require(page, "filename", where), page.get("title", ""), lambda text=require(page, "wiki_context", where): text
            )
            for page in rows_of(require(row, "entity_pages", where))
        ]
        question = TriviaQuestion(
            question_id=str(require(row, "question_id", where)),
            question=require(row, "question", where),
            aliases=list(require(answer, "aliases", where)) + list(answer.get("normalized_aliases", [])),
            documents=documents,
        )
        yield from question_records(question, stats)


def is_official_file(path: str) -> bool:
    return '"EntityPages"' in peek_text(path)


def related_paths(path: str) -> list[str]:
    try:
        return [find_evidence_dir(path)]
    except QADataError:
        return []


SOURCE = OfficialSource(
    name="trivia_qa",
    split_files={
        "train": ("qa/wikipedia-train.json", "wikipedia-train.json"),
        "validation": ("qa/wikipedia-dev.json", "wikipedia-dev.json"),
    },
    convert_file=convert_file,
    is_official_file=is_official_file,
    hub=HubCopy("mandarjoshi/trivia_qa", "rc.wikipedia", convert_hub_rows),
    options={"context_tokens": CONTEXT_TOKENS, "alias_order": "aliases, normalized_aliases"},
    related_paths=related_paths,
)
