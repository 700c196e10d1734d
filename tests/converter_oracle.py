"""The records the paper's converter (amazon-science/qa-dataset-converter) makes from QuAC and NewsQA files, derived
here from its rules alone (pandas for the CSV, as the converter reads it), independently of sources/, so that the
tests compare the adapters with the rules rather than with themselves.

Records are flat SQuAD 2.0 dicts. Two things are ours, not the converter's: the title (QuAC `<title>: <section>`,
NewsQA the story's file name) and NewsQA's ids (`<story>_q<n>` in file order; the converter draws random ones).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter

import pandas as pd


def record(record_id: str, title: str, context: str, question: str, answers: list[tuple[str, int]]) -> dict:
    return {
        "id": record_id,
        "title": title,
        "context": context,
        "question": question,
        "answers": {"text": [t for t, _ in answers], "answer_start": [s for _, s in answers]},
    }


def quac_records(path: str) -> list[dict]:
    """Each turn over its section text as is; `orig_answer` copied; CANNOTANSWER -> no answer."""
    with open(path, encoding="utf-8") as handle:
        quac = json.load(handle)
    records = []
    for example in quac["data"]:
        title = f"{example['title']}: {example['section_title']}"
        for paragraph in example["paragraphs"]:
            for turn in paragraph["qas"]:
                orig = turn["orig_answer"]
                answers = [] if orig["text"] == "CANNOTANSWER" else [(orig["text"], orig["answer_start"])]
                records.append(record(turn["id"], title, paragraph["context"], turn["question"], answers))
    return records


def newsqa_records(path: str) -> list[dict]:
    """The first token range's story tokens joined by spaces, at its first find in the story; else no answer."""
    frame = pd.read_csv(path)
    per_story: Counter = Counter()
    records = []
    for row in frame.itertuples():
        story = os.path.basename(row.story_id)[: -len(".story")]
        record_id = f"{story}_q{per_story[story]}"
        per_story[story] += 1
        text = ""
        if isinstance(row.answer_token_ranges, str):  # pandas reads an empty cell as NaN
            first, last = [int(number) for number in re.split(":|,", row.answer_token_ranges)][0:2]
            text = " ".join(row.story_text.split()[first:last])
        start = row.story_text.find(text) if text else -1
        answers = [(text, start)] if start != -1 else []
        records.append(record(record_id, story, row.story_text, row.question, answers))
    return records


def mrqa_records(path: str, title: str) -> list[dict]:
    """MRQA lines (header or not): each detected answer at its first char span (inclusive end), text from the
    context."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            obj = json.loads(line)
            if "header" in obj:
                continue
            for qa in obj["qas"]:
                answers = []
                for detected in qa["detected_answers"]:
                    start, end = detected["char_spans"][0]
                    answers.append((obj["context"][start : end + 1], start))
                records.append(record(qa["qid"], title, obj["context"], qa["question"], list(dict.fromkeys(answers))))
    return records
