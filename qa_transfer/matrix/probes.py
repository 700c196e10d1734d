"""The robustness probes of Sen & Saffari (2020) (random labels, shuffled contexts, incomplete questions, filler
words, negation) as deterministic transformations of flat SQuAD 2.0 records (`id, title, context, question,
answers{text, answer_start}`). Only the paper's opening could be read (docs/probes.md: "Checked against the paper"), so
how each probe is done below is our choice, not a checked copy of the paper's protocol.

Evaluation probes (`cross_eval.py --probes NAME ...`) change an evaluation set and keep every answer aligned:

- `shuffled_context`: the context's sentences in a random order (answers move with their sentence);
- `question_prefix:N`: only the first N words of each question (3 when N is left out);
- `no_question`: the question left out (an empty question);
- `filler`: a filler word ("really", "actually" or "definitely") added to each question, which keeps its meaning;
- `negation`: the question's first auxiliary verb negated ("was" -> "wasn't"); the original answer no longer answers it,
  so the question becomes unanswerable. Questions that are unanswerable already, or have no auxiliary verb to
  negate, are left out of the probed set.

The training probe (`run_qa.py --random_label_fraction P`, `randomize_answers`) gives a seeded fraction of the
answerable training questions a random span of their context, as many words long as their answer.

Every random choice of a record comes from a generator seeded by (seed, probe, record id): a record is changed
the same way whatever subset or order it comes in, and the same seed gives the same output.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from qa_transfer.core.errors import ProbeError

# Part of every probed cell's settings: a change to what a probe does makes stored probed cells stale.
PROBES_VERSION = 1

FILLER_WORDS = ("really", "actually", "definitely")
AUXILIARY_VERBS = frozenset(
    ["is", "are", "was", "were", "am", "be", "been", "do", "does", "did", "has", "have", "had", "can", "could",
     "will", "would", "shall", "should", "may", "might", "must"]
)
IRREGULAR_CONTRACTIONS = {"can": "can't", "will": "won't", "shall": "shan't"}
NO_CONTRACTION = frozenset({"am", "be", "been", "may", "might"})
# Words whose final period ends no sentence ("Mr. Smith", "St. Louis", "c. 1850"); one-letter words too ("J. Smith").
ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "no", "nos", "vol", "fig", "gen", "col", "lt", "sgt",
     "capt", "gov", "sen", "rep", "rev", "inc", "co", "corp", "ltd", "etc", "approx", "ca", "c", "jan", "feb", "mar",
     "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft"]
)
# End of a sentence: terminal punctuation, optional closing quotes or brackets, then whitespace.
SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*\s+")


@dataclass(frozen=True)
class Probe:
    """A parsed probe: its name as given (`question_prefix:3`), and what it does to one record."""

    spec: str
    transform: Callable[[dict[str, Any], random.Random], dict[str, Any] | None]  # None: the record is left out

    def apply(self, dataset: Dataset, seed: int) -> Dataset:
        """The probed copy of `dataset` (records the probe cannot change are left out: negation only)."""
        records = []
        for record in dataset:
            changed = self.transform(dict(record), record_rng(seed, self.spec, record["id"]))
            if changed is not None:
                records.append(changed)
        return Dataset.from_list(records, features=dataset.features)


def record_rng(seed: int, name: str, record_id: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so it does not depend on PYTHONHASHSEED.
    return random.Random(f"{seed}/{name}/{record_id}")


# --- Sentences and words --------------------------------------------------------------------------------


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, whitespace around it excluded. A period after an abbreviation
    or a single letter, or one followed by a lowercase word, ends no sentence; when in doubt a sentence stays
    whole, which only makes the shuffle coarser."""
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        following = text[match.end():match.end() + 1]
        if not following or not (following.isupper() or following.isdigit() or following in "\"'\u201c\u2018("):
            continue
        words = text[start:match.start()].split()
        last_word = words[-1].lower().lstrip("(\"'\u201c\u2018") if words else ""
        ends_with_period_only = not any(mark in match.group() for mark in "?!")
        if ends_with_period_only and (len(last_word) <= 1 or last_word in ABBREVIATIONS or "." in last_word):
            continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    stripped = []
    for begin, end in spans:
        chunk = text[begin:end]
        left = len(chunk) - len(chunk.lstrip())
        right = len(chunk.rstrip())
        if right > left:
            stripped.append((begin + left, begin + right))
    return stripped


def word_spans(text: str) -> list[tuple[int, int]]:
    return [(match.start(), match.end()) for match in re.finditer(r"\S+", text)]


def answer_spans(record: dict[str, Any]) -> list[tuple[int, int]]:
    return [(start, start + len(text))
            for text, start in zip(record["answers"]["text"], record["answers"]["answer_start"])]


# --- Evaluation probes ----------------------------------------------------------------------------------


def shuffle_context(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The context's sentences in a random order, joined by single spaces. Sentences that one answer spans stay
    together as one unit, so every answer is still in the new context, at its new offset."""
    context = record["context"]
    units = [list(span) for span in sentence_spans(context)]
    for begin, end in answer_spans(record):
        # The units an answer touches become one, stretched over the whitespace between sentences that the answer
        # takes in (" It was" starts in it), so the answer stays whole; whitespace alone joins the unit before it.
        touched = [i for i, (u_begin, u_end) in enumerate(units) if u_begin < end and begin < u_end]
        if not touched:
            touched = [max((i for i, (u_begin, _) in enumerate(units) if u_begin < begin), default=0)]
        first, last = touched[0], touched[-1]
        units[first:last + 1] = [[min(units[first][0], begin), max(units[last][1], end)]]
    order = list(range(len(units)))
    rng.shuffle(order)
    pieces, new_start_of = [], {}
    position = 0
    for i in order:
        begin, end = units[i]
        new_start_of[i] = position
        pieces.append(context[begin:end])
        position += end - begin + 1  # the joining space
    new_context = " ".join(pieces)
    starts = []
    for text, start in zip(record["answers"]["text"], record["answers"]["answer_start"]):
        unit = next(i for i, (begin, end) in enumerate(units) if begin <= start and start + len(text) <= end)
        starts.append(new_start_of[unit] + start - units[unit][0])
    return {**record, "context": new_context,
            "answers": {"text": list(record["answers"]["text"]), "answer_start": starts}}


def question_prefix(words: int) -> Callable[[dict[str, Any], random.Random], dict[str, Any]]:
    def transform(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        return {**record, "question": " ".join(record["question"].split()[:words])}

    return transform


def no_question(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    return {**record, "question": ""}


def auxiliary_index(words: list[str]) -> int | None:
    """The position of the question's first auxiliary verb, if it has one."""
    for i, word in enumerate(words):
        if word.lower().strip(",;:?!\"'") in AUXILIARY_VERBS:
            return i
    return None


def add_filler(words_to_choose: tuple[str, ...]) -> Callable[[dict[str, Any], random.Random], dict[str, Any]]:
    def transform(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """One filler word before the question's first auxiliary verb after its first word ("What really is
        ...", "When really did ..."); with none, after the first word ("Which really team ...")."""
        words = record["question"].split()
        filler = rng.choice(words_to_choose)
        aux = auxiliary_index(words[1:])
        position = aux + 1 if aux is not None else min(1, len(words))
        return {**record, "question": " ".join(words[:position] + [filler] + words[position:])}

    return transform


def negated_auxiliary(word: str) -> str:
    """"was" -> "wasn't", "Did" -> "Didn't", "can" -> "can't"; "not" after the few that have no contraction."""
    lower = word.lower()
    if lower in NO_CONTRACTION:
        return f"{word} not"
    negated = IRREGULAR_CONTRACTIONS.get(lower, f"{lower}n't")
    return negated[0].upper() + negated[1:] if word[0].isupper() else negated


def negate(record: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """The question's first auxiliary verb negated ("When wasn't ...", "How many did not ..."), the question
    marked unanswerable; None (left out) when it is unanswerable already or has no auxiliary verb to negate."""
    if not record["answers"]["text"]:
        return None
    words = record["question"].split()
    aux = auxiliary_index(words)
    if aux is None or not words[aux].isalpha():
        return None
    question = " ".join(words[:aux] + [negated_auxiliary(words[aux])] + words[aux + 1:])
    return {**record, "question": question, "answers": {"text": [], "answer_start": []}}


def parse_probe(spec: str) -> Probe:
    """`shuffled_context`, `question_prefix:N`, `no_question`, `filler[:WORD]`, `negation` as a Probe."""
    name, _, parameter = spec.partition(":")
    if name == "question_prefix":
        try:
            words = int(parameter or 3)
        except ValueError:
            raise ProbeError(
                f"probe {spec!r}: question_prefix takes a number of words, e.g. question_prefix:3") from None
        if words < 1:
            raise ProbeError(f"probe {spec!r}: keep at least one word")
        return Probe(spec, question_prefix(words))
    if name == "filler":
        words = (parameter,) if parameter else FILLER_WORDS
        if parameter and not re.fullmatch(r"[A-Za-z'-]+", parameter):
            raise ProbeError(f"probe {spec!r}: the filler must be one word")
        return Probe(spec, add_filler(words))
    simple = {"shuffled_context": shuffle_context, "no_question": no_question, "negation": negate}
    if name in simple and not parameter:
        return Probe(spec, simple[name])
    raise ProbeError(
        f"unknown probe {spec!r}: choose from shuffled_context, question_prefix:N, no_question, filler[:WORD], negation"
    )


def apply_probe(dataset: Dataset, spec: str, seed: int) -> Dataset:
    return parse_probe(spec).apply(dataset, seed)


# --- Training probe -------------------------------------------------------------------------------------


def random_span_answer(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The first answer replaced by a random span of the context with as many words (whitespace tokens)."""
    text = record["answers"]["text"][0]
    words = word_spans(record["context"])
    length = min(max(1, len(text.split())), len(words))
    first = rng.randrange(len(words) - length + 1)
    begin, end = words[first][0], words[first + length - 1][1]
    return {**record, "answers": {"text": [record["context"][begin:end]], "answer_start": [begin]}}


def randomize_answers(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, int]:
    """`dataset` with a seeded `fraction` of its answerable questions answered by random spans of the same
    length in their context (Sen & Saffari's random labels); returns it and how many were changed.
    Unanswerable questions keep their empty answers."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"--random_label_fraction must be in [0, 1], got {fraction}")
    answerable = [i for i, texts in enumerate(dataset["answers"]["text"]) if texts]
    count = round(fraction * len(answerable))
    if count == 0:
        return dataset, 0
    chosen = set(random.Random(f"{seed}/random_labels").sample(answerable, count))

    def relabel(record: dict[str, Any], index: int) -> dict[str, Any]:
        if index not in chosen:
            return record
        return random_span_answer(record, record_rng(seed, "random_labels", record["id"]))

    return dataset.map(relabel, with_indices=True, features=dataset.features, desc="Random labels"), count


__all__ = [
    "FILLER_WORDS",
    "PROBES_VERSION",
    "Probe",
    "apply_probe",
    "parse_probe",
    "randomize_answers",
    "sentence_spans",
]
