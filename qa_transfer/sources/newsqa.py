"""NewsQA, converted by the paper's rules (Sen & Saffari, 2020; amazon-science/qa-dataset-converter) from Maluuba's
split CSVs `split_data/{train,dev,test}.csv` (`story_id, story_text, question, answer_token_ranges`), built with
Maluuba's tools (https://github.com/Maluuba/newsqa):

- the context is `story_text`;
- the answer is the story's whitespace tokens (`str.split()`) of the *first* token range (`start:end`, end
  exclusive; several ranges are separated by commas) joined with single spaces, placed at its first `str.find` in
  the story; no range, a range that selects no tokens (`-1:-1`), or a text not found in the story (tokens that
  were separated by a newline or two spaces) means unanswerable. Nothing is dropped.
Record ids are `<story>_q<n>`, n counting the story's questions in file order, so they are the same on every run
(the converter draws random ones).

Two named alternatives, never used silently:
- `newsqa_combined_json`: Maluuba's `combined-newsqa-data-v1.json`, by each question's `consensus` character range
  (`{"s", "e"}`, end exclusive, may end on whitespace), `{"noAnswer": true}` (unanswerable) or `{"badQuestion":
  true}` (dropped); each story's `type` says its split. It keeps questions the split CSVs drop, so it is not the
  paper's data.
- `newsqa_mrqa`: the MRQA 2019 release of NewsQA (answerable questions only), downloadable; MRQA files given with
  `--dataset newsqa` are read by it too.
There is no loadable hub copy with the original questions.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator

from qa_transfer.core.errors import QADataError
from qa_transfer.qa.data import read_json_document

from . import mrqa
from .common import (
    ConversionStats,
    OfficialSource,
    RemoteFiles,
    flat_record,
    iter_csv_rows,
    peek_text,
    require,
    span_answer,
)

CSV_COLUMNS = ("story_id", "story_text", "question", "answer_token_ranges")
JSON_STORY_TYPES = {"train": "train", "validation": "dev", "test": "test"}


def story_key(story_id: str) -> str:
    """A short stable name for a story: `./cnn/stories/<hash>.story` -> `<hash>`."""
    name = os.path.basename(story_id.strip())
    return name[: -len(".story")] if name.endswith(".story") else name


def first_token_range(ranges: str, where: str) -> tuple[int, int] | None:
    """The first `start:end` of an `answer_token_ranges` cell, as the converter reads it (the first two numbers of
    the cell split at `:` and `,`); None when the cell is empty."""
    if ranges.strip() in ("", "None", "nan"):  # pandas, which the converter reads with, sees these as missing
        return None
    try:
        start, end = (int(number) for number in re.split("[:,]", ranges)[:2])
    except ValueError:
        raise QADataError(
            f"{where}: answer_token_ranges {ranges!r} is not of the form start:end[,start:end...]") from None
    return start, end


def paper_answer(story: str, token_range: tuple[int, int]) -> tuple[str, int] | None:
    """The converter's answer: the story's whitespace tokens in the range (a Python slice) joined with single
    spaces, placed at its first occurrence in the story; None when that text is empty or not in the story."""
    text = " ".join(story.split()[token_range[0] : token_range[1]])
    start = story.find(text) if text else -1
    return (text, start) if start >= 0 else None


def _csv_records(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    question_counts: Counter = Counter()
    for row_no, row in iter_csv_rows(path, CSV_COLUMNS):
        where = f"{path}: row {row_no}"
        story, context = story_key(row["story_id"]), row["story_text"]
        record_id = f"{story}_q{question_counts[story]}"
        question_counts[story] += 1
        token_range = first_token_range(row["answer_token_ranges"], f"{where} ({record_id})")
        answer = paper_answer(context, token_range) if token_range is not None else None
        if token_range is None:
            stats.note("unanswerable (no answer range)")
        elif answer is None:
            stats.note("unanswerable (the first range selects no tokens, or they are not in the story as joined)")
        yield stats.keep(flat_record(record_id, story, context, row["question"], [answer] if answer else []))


def _json_records(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    obj = read_json_document(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise QADataError(f"{path}: not a NewsQA file: expected {{'data': [{{'storyId', 'text', 'questions'}}]}}")
    wanted_type = JSON_STORY_TYPES[split] if split else None
    for s_index, story_obj in enumerate(obj["data"]):
        where = f"{path}: data[{s_index}]"
        story = story_key(require(story_obj, "storyId", where))
        if wanted_type is not None and require(story_obj, "type", where) != wanted_type:
            continue
        context = require(story_obj, "text", where)
        for q_index, question in enumerate(require(story_obj, "questions", where)):
            record_id = f"{story}_q{q_index}"
            q_where = f"{path}: question {record_id!r}"
            consensus = require(question, "consensus", q_where)
            if consensus.get("badQuestion"):
                stats.drop("bad question by consensus")
                continue
            answers = []
            if consensus.get("noAnswer"):
                stats.note("unanswerable (no answer by consensus)")
            else:
                start, end = int(require(consensus, "s", q_where)), int(require(consensus, "e", q_where))
                if end > len(context):  # Maluuba's own loader clips such ends too
                    stats.repair("answer end clipped to the story's end")
                    end = len(context)
                answer = span_answer(context, start, end) if 0 <= start < end else None
                if answer is None:
                    stats.note("unanswerable (no or empty answer range)")
                else:
                    answers.append(answer)
            yield stats.keep(flat_record(record_id, story, context, require(question, "q", q_where), answers))


def convert_file(path: str, split: str | None, stats: ConversionStats) -> Iterator[dict]:
    """Records from a split CSV by the paper's rules; Maluuba's combined JSON is refused (see COMBINED_JSON_SOURCE)."""
    stem = path[:-3] if path.endswith(".gz") else path
    if stem.endswith(".csv"):
        return _csv_records(path, split, stats)
    raise QADataError(
        f"{path}: this is Maluuba's combined JSON, not the split CSVs the paper converted (other questions are kept "
        "and dropped): pass --dataset newsqa_combined_json to use it anyway, or build split_data/*.csv (see "
        "--dataset newsqa without --data_dir for the steps)"
    )


def is_official_file(path: str) -> bool:
    stem = path[:-3] if path.endswith(".gz") else path
    return stem.endswith(".csv") or is_combined_json(path)


def is_combined_json(path: str) -> bool:
    return '"storyId"' in peek_text(path)


MALUUBA_STEPS = (
    "NewsQA cannot be downloaded automatically: CNN's terms forbid redistributing the stories, so Maluuba's tools "
    "build it from two downloads. (1) git clone https://github.com/Maluuba/newsqa && cd newsqa; (2) download the "
    "questions and answers (newsqa-data-v1.tar.gz) from https://msropendata.com/datasets/939b1042-6402-4697-9c15-"
    "7a28de7e1321 into maluuba/newsqa/ (do not extract it); (3) download the CNN stories (cnn_stories.tgz) from "
    "https://cs.nyu.edu/~kcho/DMQA/ into maluuba/newsqa/; (4) docker build -t maluuba/newsqa . && docker run --rm "
    "-it -v ${PWD}:/usr/src/newsqa --name newsqa maluuba/newsqa /bin/bash --login -c 'python "
    "maluuba/newsqa/data_generator.py' (without Docker: Python 2.7 with its requirements.txt, a JDK and the Stanford "
    "POS tagger 3.6.0 in maluuba/newsqa/, then python maluuba/newsqa/data_generator.py); (5) pass --data_dir DIR, DIR "
    "being the clone: it now holds split_data/train.csv, dev.csv and test.csv (the files the paper converted: "
    "--dataset newsqa) and combined-newsqa-data-v1.json (--dataset newsqa_combined_json); or pass one of those files "
    "with --train_file / --validation_file. "
    "Or use --dataset newsqa_mrqa: the MRQA 2019 release of NewsQA, downloadable, answerable questions only "
    "(not the paper's data)."
)

# The MRQA 2019 release of NewsQA: downloadable, but only answerable questions and MRQA's own answer spans. Files given
# with --dataset newsqa in this layout are read by it too.
MRQA_SOURCE = OfficialSource(
    name="newsqa_mrqa",
    split_files={"train": ("train/NewsQA.jsonl.gz", "train/NewsQA.jsonl"),
                 "validation": ("dev/NewsQA.jsonl.gz", "dev/NewsQA.jsonl")},
    convert_file=mrqa.convert_file,
    is_official_file=mrqa.is_official_file,
    no_hub_help=(
        f"download {mrqa.DOWNLOAD_URL}/train/NewsQA.jsonl.gz and {mrqa.DOWNLOAD_URL}/dev/NewsQA.jsonl.gz into "
        "DIR/train/ and DIR/dev/ and pass --data_dir DIR, or --train_file / --validation_file NewsQA.jsonl.gz"
    ),
    options=mrqa.SOURCE.options,
    conversion=mrqa.CONVERSION,
    remote=RemoteFiles(
        mrqa.DOWNLOAD_URL, "MRQA_BASE_URL",
        {"train": ("train/NewsQA.jsonl.gz",), "validation": ("dev/NewsQA.jsonl.gz",)},
    ),
)

SOURCE = OfficialSource(
    name="newsqa",
    split_files={
        "train": ("split_data/train.csv", "train.csv"),
        "validation": ("split_data/dev.csv", "dev.csv"),
        "test": ("split_data/test.csv", "test.csv"),
    },
    convert_file=convert_file,
    is_official_file=is_official_file,
    no_hub_help=MALUUBA_STEPS,
    options={"answer": "first token range joined with spaces, at its first str.find"},
    file_routes=(MRQA_SOURCE,),
)

# Maluuba's combined JSON, by each story's consensus answer: not the paper's data, so only under its own name.
COMBINED_JSON_SOURCE = OfficialSource(
    name="newsqa_combined_json",
    split_files=dict.fromkeys(JSON_STORY_TYPES, ("combined-newsqa-data-v1.json", "combined-newsqa-data-v1.json.gz")),
    convert_file=_json_records,
    is_official_file=is_combined_json,
    no_hub_help=MALUUBA_STEPS,
    options={"answer": "consensus character range"},
    conversion="maluuba_combined_json_consensus",
)
