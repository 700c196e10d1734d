"""Natural Questions, converted as Sen & Saffari (2020) did (`nq/nq_to_squad.py` in
amazon-science/qa-dataset-converter). Its rules:

- Long answer: with one annotator (the train set), theirs; with several (the dev set has five), at least two
  must have chosen one, and the byte span most of them chose is used (a tie goes to the earliest annotator's).
  It is kept only when its last token is `</P>` (a paragraph); other examples are dropped.
- Context: the long answer's byte span of the document HTML, rendered by BeautifulSoup with the lxml parser
  (`get_text()`): entities decoded, tags removed, the page's own spacing kept.
- Short answers: with one annotator, theirs; with several, at least two must have given a short answer or a
  yes/no answer. Each annotator's spans are rendered the same way and joined with ", " into one answer text;
  the texts are deduplicated, and each is placed at its first `str.find` in the context, skipped when absent.
  None placed (or yes/no only) means unanswerable.

The converter keeps the deduplicated texts in a Python set, whose order changes from run to run; here they
keep the annotators' order. Examples whose long answer renders to blank text are dropped, and an empty short
answer text is skipped (the converter would place it at 0), both counted: the SQuAD 2.0 schema cannot hold them.

Layouts: the original `nq-{train,dev}-NN.jsonl.gz` (`document_html` plus `document_tokens`) and the hub's
`google-research-datasets/natural_questions` rows (`document.html`, `document.tokens` and `annotations` as dicts
of lists, `yes_no_answer` as -1/0/1), which carry the same HTML and byte offsets. The simplified layout
(`simplified-nq-*.jsonl.gz`, `document_text`) has no HTML and is refused.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

from qa_transfer.core.errors import QADataError
from qa_transfer.qa.data import iter_json_lines

from .common import ConversionStats, HubCopy, OfficialSource, flat_record, peek_text, require, rows_of

HUB_YES_NO = {-1: "NONE", 0: "NO", 1: "YES"}
PARAGRAPH_END = "</P>"

# Short answers such as "1889" or "example.com" look to BeautifulSoup like file names or URLs; they are text.
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)


@dataclass(frozen=True)
class AnswerSpan:
    start_byte: int
    end_byte: int
    end_token: int


@dataclass
class Annotation:
    long_answer: AnswerSpan | None  # None when the annotator chose none
    short_answers: list[AnswerSpan]
    yes_no: str  # "YES", "NO" or "NONE"


@dataclass
class Example:
    """One NQ example, whichever layout it came from."""

    example_id: str
    title: str
    question: str
    html: bytes  # the document HTML, UTF-8: the annotations' byte offsets index it
    tokens: list[str]  # the document tokens, HTML tags included
    annotations: list[Annotation]


def _answer_span(span: dict, where: str) -> AnswerSpan | None:
    start = require(span, "start_byte", where)
    if start < 0:
        return None
    return AnswerSpan(int(start), int(require(span, "end_byte", where)), int(require(span, "end_token", where)))


def _annotation(annotation: dict, short_answers: list[dict], yes_no: str, where: str) -> Annotation:
    return Annotation(
        long_answer=_answer_span(require(annotation, "long_answer", where), where),
        short_answers=[span for span in (_answer_span(s, where) for s in short_answers) if span],
        yes_no=yes_no,
    )


def example_from_file(obj: dict, where: str) -> Example:
    """An example from a line of the original jsonl."""
    if "document_html" not in obj and "document_text" in obj:
        raise QADataError(
            f"{where}: the simplified Natural Questions layout (document_text) has no document HTML, which the "
            "paper's conversion renders; use the original nq-*.jsonl.gz files or the hub copy"
        )
    annotations = [
        _annotation(annotation, annotation.get("short_answers") or [], annotation.get("yes_no_answer", "NONE"), where)
        for annotation in require(obj, "annotations", where)
    ]
    return Example(
        example_id=str(require(obj, "example_id", where)),
        title=obj.get("document_title") or "",
        question=require(obj, "question_text", where),
        html=require(obj, "document_html", where).encode("utf-8"),
        tokens=[require(token, "token", where) for token in require(obj, "document_tokens", where)],
        annotations=annotations,
    )


def example_from_hub(row: dict, where: str) -> Example:
    """An example from a `google-research-datasets/natural_questions` row."""
    document = require(row, "document", where)
    html = require(document, "html", where)
    annotations = [
        _annotation(
            annotation,
            rows_of(annotation.get("short_answers") or []),
            HUB_YES_NO.get(annotation.get("yes_no_answer", -1), "NONE"),
            where,
        )
        for annotation in rows_of(require(row, "annotations", where))
    ]
    return Example(
        example_id=str(require(row, "id", where)),
        title=document.get("title") or "",
        question=require(require(row, "question", where), "text", where),
        html=html if isinstance(html, bytes) else html.encode("utf-8"),
        tokens=list(require(require(document, "tokens", where), "token", where)),
        annotations=annotations,
    )


def render(example: Example, span: AnswerSpan, where: str) -> str:
    """The text of a byte span of the document HTML, as BeautifulSoup (lxml) renders it."""
    if not 0 <= span.start_byte <= span.end_byte <= len(example.html):
        raise QADataError(f"{where}: byte span {span.start_byte}:{span.end_byte} lies outside the document's "
                          f"{len(example.html)} HTML bytes")
    try:
        fragment = example.html[span.start_byte : span.end_byte].decode("utf-8")
    except UnicodeDecodeError:
        raise QADataError(f"{where}: byte span {span.start_byte}:{span.end_byte} splits a UTF-8 character of the "
                          "document HTML") from None
    return BeautifulSoup(fragment, features="lxml").get_text()


def _agreed(annotations: list[Annotation], votes: int) -> bool:
    """Whether enough annotators agree: the only one, or at least two of several."""
    return votes >= (1 if len(annotations) == 1 else 2)


def example_records(example: Example, stats: ConversionStats, where: str) -> Iterator[dict]:
    """The flat record of one example, or nothing when it has no paragraph long answer."""
    annotations = example.annotations
    long_answers = [annotation.long_answer for annotation in annotations if annotation.long_answer]
    if not _agreed(annotations, len(long_answers)):
        stats.drop("no long answer")
        return
    bounds = [(span.start_byte, span.end_byte) for span in long_answers]
    # the first of the most chosen
    chosen = max(long_answers, key=lambda span: bounds.count((span.start_byte, span.end_byte)))
    if not 0 < chosen.end_token <= len(example.tokens):
        raise QADataError(f"{where}: long answer end_token {chosen.end_token} lies outside the document's "
                          f"{len(example.tokens)} tokens")
    if example.tokens[chosen.end_token - 1] != PARAGRAPH_END:
        stats.drop("long answer is not a paragraph")
        return
    context = render(example, chosen, where)
    if not context.strip():
        stats.drop("long answer renders to blank text")
        return
    answers = []
    if _agreed(annotations, sum(bool(a.short_answers) or a.yes_no != "NONE" for a in annotations)):
        texts = [", ".join(render(example, span, where) for span in a.short_answers)
                 for a in annotations if a.short_answers]
        for text in dict.fromkeys(texts):
            found = context.find(text) if text else -1
            if not text:
                stats.note("empty short answer text skipped")
            elif found >= 0:
                answers.append((text, found))
        if not answers:
            yes_no_only = not any(a.short_answers for a in annotations)
            stats.note("unanswerable (yes/no answer only)" if yes_no_only
                       else "unanswerable (no short answer text in the context)")
    elif any(a.short_answers or a.yes_no != "NONE" for a in annotations):
        stats.note("unanswerable (fewer than two annotators gave a short answer)")
    yield stats.keep(flat_record(example.example_id, example.title, context, example.question, answers))


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from one NQ jsonl(.gz) file in the original layout, streamed line by line."""
    for line_no, obj in iter_json_lines(path):
        where = f"{path}: line {line_no}"
        example = example_from_file(obj, where)
        yield from example_records(example, stats, f"{where} (example {example.example_id})")


def convert_hub_rows(rows: Iterable[dict], label: str, stats: ConversionStats) -> Iterator[dict]:
    for index, row in enumerate(rows):
        where = f"{label}: row {index}"
        example = example_from_hub(row, where)
        stats.reasons["document HTML bytes read"] += len(example.html)
        yield from example_records(example, stats, f"{where} (example {example.example_id})")


def is_official_file(path: str) -> bool:
    head = peek_text(path)
    return any(marker in head for marker in ('"long_answer"', '"document_text"', '"document_tokens"'))


SOURCE = OfficialSource(
    name="natural_questions",
    split_files={
        "train": ("train/*.jsonl.gz", "train/*.jsonl", "*nq-train*.jsonl.gz", "*nq-train*.jsonl"),
        "validation": ("dev/*.jsonl.gz", "dev/*.jsonl", "*nq-dev*.jsonl.gz", "*nq-dev*.jsonl"),
    },
    convert_file=convert_file,
    is_official_file=is_official_file,
    # long_answer_candidates, question tokens and the rest are never read
    hub=HubCopy("google-research-datasets/natural_questions", "default", convert_hub_rows,
                columns=("id", "document", "question", "annotations")),
    options={"context": "long answer HTML rendered by BeautifulSoup(lxml), last token </P>", "min_annotators": 2,
             "short_answers": "spans joined with ', ', first str.find"},
)
