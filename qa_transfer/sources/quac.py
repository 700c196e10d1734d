"""QuAC, converted by the paper's rules (Sen & Saffari, 2020; amazon-science/qa-dataset-converter): every dialogue
turn becomes a standalone question over the section text, without the dialogue history.

- The context is the section text exactly as in the file, QuAC's trailing `CANNOTANSWER` sentinel included.
- The answer is the turn's `orig_answer` (the answer the teacher gave in the dialogue), text and `answer_start`
  copied verbatim; `CANNOTANSWER` makes the turn unanswerable. Nothing is repaired or dropped. An `orig_answer`
  that is not at its `answer_start` is kept as it is and counted (the SQuAD-format check of run_qa.py then names it).
- The title is `<page title>: <section title>`; the id is the turn's id.

Official files: `train_v0.2.json` and `val_v0.2.json`, downloaded from QuAC's public location (the one its old hub
loading script used) when no --data_dir is given. The hub copy (`allenai/quac`) is a loading script, which
datasets 4 and later refuse to run.
"""

from __future__ import annotations

from collections.abc import Iterator

from qa_transfer.core.errors import QADataError
from qa_transfer.qa.data import read_json_document

from .common import ConversionStats, OfficialSource, RemoteFiles, flat_record, peek_text, require

CANNOTANSWER = "CANNOTANSWER"
DOWNLOAD_URL = "https://s3.amazonaws.com/my89public/quac"
SPLIT_FILES = {"train": ("train_v0.2.json",), "validation": ("val_v0.2.json",)}


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
            context = require(paragraph, "context", where)
            for turn in require(paragraph, "qas", where):
                turn_id = turn.get("id") if isinstance(turn, dict) else None
                turn_where = f"{path}: turn {turn_id!r}" if turn_id else f"{where}, a turn"
                yield stats.keep(_turn_record(turn, turn_where, full_title, context, stats))


def _turn_record(turn: dict, where: str, title: str, context: str, stats: ConversionStats) -> dict:
    orig = require(turn, "orig_answer", where)
    text, start = require(orig, "text", where), require(orig, "answer_start", where)
    if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
        raise QADataError(f"{where}: orig_answer needs a string 'text' and an integer 'answer_start', got {orig!r}")
    answers = []
    if text != CANNOTANSWER:
        if context[start : start + len(text)] != text:
            stats.note("orig_answer not at its answer_start (kept verbatim, as the paper's converter does)")
        answers.append((text, start))
    return flat_record(str(require(turn, "id", where)), title, context, require(turn, "question", where), answers)


def is_official_file(path: str) -> bool:
    return '"orig_answer"' in peek_text(path)


SOURCE = OfficialSource(
    name="quac",
    split_files={split: (*names, *(f"{name}.gz" for name in names)) for split, names in SPLIT_FILES.items()},
    convert_file=convert_file,
    is_official_file=is_official_file,
    no_hub_help=(
        "QuAC has no hub copy that datasets 4+ can load (allenai/quac is a loading script). Download "
        f"{DOWNLOAD_URL}/train_v0.2.json and {DOWNLOAD_URL}/val_v0.2.json and pass --data_dir DIR (the folder "
        "holding them), or --train_file train_v0.2.json / --validation_file val_v0.2.json"
    ),
    options={"answer": "orig_answer verbatim", "context": "section text whole"},
    remote=RemoteFiles(DOWNLOAD_URL, "QUAC_BASE_URL", SPLIT_FILES),
)
