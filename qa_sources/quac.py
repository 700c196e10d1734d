"""QuAC, converted as Sen & Saffari (2020) did: every dialogue turn becomes a standalone question over the section
text, without the dialogue history. The turn's answer is its `orig_answer` (the answer the teacher gave in the
dialogue); `CANNOTANSWER` makes it unanswerable. The `CANNOTANSWER` sentinel that QuAC appends to every section is
removed from the context, so a model can never "find" it there.

Official files: `train_v0.2.json` and `val_v0.2.json` from https://quac.ai. The hub copy (`allenai/quac`) is a
loading script, which datasets 4 and later refuse to run, so there is no hub path.
"""

from __future__ import annotations

from collections.abc import Iterator

from qa_data import QADataError

from .common import ConversionStats, OfficialSource, answer_at, flat_record, peek_text, read_json_document, require

CANNOTANSWER = "CANNOTANSWER"


def section_context(raw_context: str, where: str) -> str:
    """The section text without QuAC's trailing CANNOTANSWER sentinel."""
    context = raw_context[: -len(CANNOTANSWER)].rstrip() if raw_context.endswith(CANNOTANSWER) else raw_context
    if CANNOTANSWER in context:
        raise QADataError(f"{where}: {CANNOTANSWER} occurs inside the section text, not only as its final sentinel")
    return context


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from an official QuAC file (`train_v0.2.json` / `val_v0.2.json`)."""
    obj = read_json_document(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise QADataError(f"{path}: not a QuAC file: expected {{'data': [{{'paragraphs': [...], 'title': ...}}]}}")
    for d_index, dialogue in enumerate(obj["data"]):
        dialogue_where = f"{path}: data[{d_index}]"
        title = require(dialogue, "title", dialogue_where)
        section = dialogue.get("section_title")
        full_title = f"{title}: {section}" if section else title
        for paragraph in require(dialogue, "paragraphs", dialogue_where):
            section_id = paragraph.get("id") if isinstance(paragraph, dict) else None
            where = f"{path}: section {section_id!r}" if section_id else dialogue_where
            context = section_context(require(paragraph, "context", where), where)
            for turn in require(paragraph, "qas", where):
                turn_id = turn.get("id") if isinstance(turn, dict) else None
                turn_where = f"{path}: turn {turn_id!r}" if turn_id else f"{where}, a turn"
                yield from _turn_records(turn, turn_where, full_title, context, stats)


def _turn_records(turn: dict, where: str, title: str, context: str, stats: ConversionStats) -> Iterator[dict]:
    orig = require(turn, "orig_answer", where)
    text, start = require(orig, "text", where), require(orig, "answer_start", where)
    answers = []
    if text != CANNOTANSWER:
        answer = answer_at(context, text, start, stats)
        if answer is None:
            stats.drop("answer text not found in the section")
            return
        answers.append(answer)
    yield stats.keep(flat_record(str(require(turn, "id", where)), title, context, require(turn, "question", where), answers))


def is_official_file(path: str) -> bool:
    return '"orig_answer"' in peek_text(path)


SOURCE = OfficialSource(
    name="quac",
    split_files={"train": ("train_v0.2.json", "train_v0.2.json.gz"), "validation": ("val_v0.2.json", "val_v0.2.json.gz")},
    convert_file=convert_file,
    is_official_file=is_official_file,
    no_hub_help=(
        "QuAC has no hub copy that datasets 4+ can load (allenai/quac is a loading script). Download "
        "train_v0.2.json / val_v0.2.json from https://quac.ai and pass --data_dir DIR (the folder holding them), "
        "or --train_file train_v0.2.json / --validation_file val_v0.2.json"
    ),
    options={"answer": "orig_answer", "sentinel_removed": True},
)
