"""Natural Questions, converted as Sen & Saffari (2020) did, around one normalised example for every layout.

- Long answer: with several annotators (the dev set has five), at least two must have chosen one, as in NQ's own
  evaluation, and the span most of them chose is used (a tie goes to the earliest annotator's); examples without
  one are dropped. Only a paragraph (`<P>`) is kept: tables, lists and other long answers are dropped.
- Context: the long answer's text tokens joined by single spaces, HTML tokens left out.
- Short answers: with several annotators, at least two must have given a short answer or yes/no. Every short-answer
  span inside the chosen long answer is an answer, placed by its tokens; none, or yes/no only, is unanswerable.

Layouts: the original `nq-{train,dev}-NN.jsonl.gz` (`document_tokens` objects with `html_token`), the simplified
`simplified-nq-train.jsonl.gz` (space-joined `document_text`), and the hub's `google-research-datasets/natural_questions`
rows (`document.tokens` and `annotations` as dicts of lists, `yes_no_answer` as -1/0/1).
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from qa_data import QADataError

from .common import ConversionStats, HubCopy, OfficialSource, flat_record, iter_json_lines, peek_text, require, rows_of

# The simplified layout has no html flag; NQ's HTML tokens are bare tags such as <P>, </Td>, <H2>.
HTML_TOKEN = re.compile(r"</?[A-Za-z][A-Za-z0-9]*>")
HUB_YES_NO = {-1: "NONE", 0: "NO", 1: "YES"}


@dataclass
class Annotation:
    long_answer: tuple[int, int] | None  # token span [start, end), None when the annotator chose none
    short_answers: list[tuple[int, int]]
    yes_no: str  # "YES", "NO" or "NONE"


@dataclass
class Example:
    """One NQ example, whichever layout it came from."""

    example_id: str
    title: str
    question: str
    tokens: list[str]
    is_html: list[bool]
    annotations: list[Annotation]


def title_from_url(url: str) -> str:
    """The article title from a Wikipedia URL (the simplified layout has no title field)."""
    parsed = urllib.parse.urlparse(html.unescape(url))
    titles = urllib.parse.parse_qs(parsed.query).get("title")
    name = titles[0] if titles else urllib.parse.unquote(parsed.path.rstrip("/").rsplit("/", 1)[-1])
    return name.replace("_", " ")


def _token_span(span: dict, where: str) -> tuple[int, int] | None:
    start, end = require(span, "start_token", where), require(span, "end_token", where)
    return (int(start), int(end)) if start >= 0 else None


def example_from_file(obj: dict, where: str) -> Example:
    """An example from a line of the original or the simplified jsonl."""
    if "document_tokens" in obj:
        raw_tokens = require(obj, "document_tokens", where)
        tokens = [require(token, "token", where) for token in raw_tokens]
        is_html = [bool(token.get("html_token", False)) for token in raw_tokens]
        title = obj.get("document_title") or title_from_url(obj.get("document_url", ""))
    elif "document_text" in obj:
        tokens = obj["document_text"].split(" ")
        is_html = [HTML_TOKEN.fullmatch(token) is not None for token in tokens]
        title = title_from_url(obj.get("document_url", ""))
    else:
        raise QADataError(f"{where}: missing field 'document_tokens' (original layout) or 'document_text' (simplified)")
    annotations = [
        Annotation(
            long_answer=_token_span(require(annotation, "long_answer", where), where),
            short_answers=[span for span in (_token_span(s, where) for s in annotation.get("short_answers", [])) if span],
            yes_no=annotation.get("yes_no_answer", "NONE"),
        )
        for annotation in require(obj, "annotations", where)
    ]
    return Example(str(require(obj, "example_id", where)), title, require(obj, "question_text", where), tokens, is_html, annotations)


def example_from_hub(row: dict, where: str) -> Example:
    """An example from a `google-research-datasets/natural_questions` row."""
    document = require(row, "document", where)
    tokens = require(document, "tokens", where)
    annotations = [
        Annotation(
            long_answer=_token_span(require(annotation, "long_answer", where), where),
            short_answers=[span for span in (_token_span(s, where) for s in rows_of(annotation.get("short_answers", []))) if span],
            yes_no=HUB_YES_NO.get(annotation.get("yes_no_answer", -1), "NONE"),
        )
        for annotation in rows_of(require(row, "annotations", where))
    ]
    return Example(
        example_id=str(require(row, "id", where)),
        title=document.get("title", ""),
        question=require(require(row, "question", where), "text", where),
        tokens=list(require(tokens, "token", where)),
        is_html=list(require(tokens, "is_html", where)),
        annotations=annotations,
    )


def render_tokens(example: Example, start: int, end: int) -> tuple[str, list[tuple[int, int] | None]]:
    """The text tokens in [start, end) joined by spaces, and each token's character span in it (None for HTML)."""
    parts: list[str] = []
    spans: list[tuple[int, int] | None] = []
    position = 0
    for index in range(start, end):
        if example.is_html[index]:
            spans.append(None)
            continue
        if parts:
            position += 1
        token = example.tokens[index]
        spans.append((position, position + len(token)))
        parts.append(token)
        position += len(token)
    return " ".join(parts), spans


def _check_span(span: tuple[int, int], example: Example, where: str) -> None:
    if not 0 <= span[0] < span[1] <= len(example.tokens):
        raise QADataError(f"{where}: token span {span[0]}:{span[1]} lies outside the document's {len(example.tokens)} tokens")


def example_records(example: Example, stats: ConversionStats, where: str) -> Iterator[dict]:
    """The flat record of one example, or nothing when it has no paragraph long answer."""
    needed = 2 if len(example.annotations) > 1 else 1
    long_answers = [annotation.long_answer for annotation in example.annotations if annotation.long_answer]
    if len(long_answers) < needed:
        stats.drop("no long answer")
        return
    chosen = max(long_answers, key=long_answers.count)  # the first of the most chosen
    _check_span(chosen, example, where)
    if example.tokens[chosen[0]].upper() != "<P>":
        stats.drop("long answer is not a paragraph")
        return
    context, token_spans = render_tokens(example, *chosen)
    if not context:
        stats.drop("empty paragraph")
        return
    answers = []
    if sum(bool(a.short_answers) or a.yes_no != "NONE" for a in example.annotations) >= needed:
        for annotation in example.annotations:
            for span in annotation.short_answers:
                _check_span(span, example, where)
                if chosen[0] <= span[0] and span[1] <= chosen[1]:
                    inside = [s for s in token_spans[span[0] - chosen[0] : span[1] - chosen[0]] if s is not None]
                    if inside:
                        answers.append((context[inside[0][0] : inside[-1][1]], inside[0][0]))
        if not answers:
            only_yes_no = not any(a.short_answers for a in example.annotations)
            stats.note("unanswerable (yes/no answer only)" if only_yes_no else "unanswerable (no short answer inside the long answer)")
    elif any(a.short_answers or a.yes_no != "NONE" for a in example.annotations):
        stats.note("unanswerable (fewer than two annotators gave a short answer)")
    yield stats.keep(flat_record(example.example_id, example.title, context, example.question, answers))


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from one NQ jsonl(.gz) file, original or simplified layout, streamed line by line."""
    for line_no, obj in iter_json_lines(path):
        where = f"{path}: line {line_no}"
        example = example_from_file(obj, where)
        yield from example_records(example, stats, f"{where} (example {example.example_id})")


def convert_hub_rows(rows: Iterable[dict], label: str, stats: ConversionStats) -> Iterator[dict]:
    for index, row in enumerate(rows):
        where = f"{label}: row {index}"
        example = example_from_hub(row, where)
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
    hub=HubCopy("google-research-datasets/natural_questions", "default", convert_hub_rows),
    options={"long_answer": "paragraph", "min_annotators": 2},
)
