"""The dataset adapters on hand-written fixtures in each official layout (tests/fixtures/adapters/): the exact
records each produces, that every answer aligns, the counts, the cache, the hub paths (with a stand-in for the hub)
and the errors on bad input."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import datasets
import pytest

import convert_qa
import qa_adapters
from qa_adapters import convert_named_file, convert_named_split, load_named_file, load_named_split
from qa_data import QADataError, load_qa_file, load_qa_split
from qa_sources import quac

datasets.disable_progress_bars()

FIXTURES = Path(__file__).parent / "fixtures" / "adapters"


def rec(record_id: str, title: str, context: str, question: str, answers: list[tuple[str, int]]) -> dict:
    return {
        "id": record_id,
        "title": title,
        "context": context,
        "question": question,
        "answers": {"text": [t for t, _ in answers], "answer_start": [s for _, s in answers]},
    }


def assert_aligned(records: list[dict]) -> None:
    for record in records:
        for text, start in zip(record["answers"]["text"], record["answers"]["answer_start"]):
            assert record["context"][start : start + len(text)] == text, record["id"]


def counts(stats) -> tuple[int, int, int, int, int]:
    return stats.questions, stats.answerable, stats.unanswerable, stats.repaired_offsets, stats.dropped


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    return str(tmp_path / "cache")


@pytest.fixture
def fake_hub(monkeypatch):
    """Stands in for the hub: `datasets.load_dataset` serves the rows of a hub-layout fixture; returns the calls."""

    def serve(rows_file: Path) -> list:
        calls = []

        def fake_load_dataset(*args, **kwargs):
            calls.append((args, kwargs))
            return iter(json.loads(rows_file.read_text(encoding="utf-8")))

        monkeypatch.setattr(qa_adapters, "load_dataset", fake_load_dataset)
        return calls

    return serve


# --- QuAC -----------------------------------------------------------------------------------------------------

ADA = (
    "In 1842 Lovelace translated an article by Luigi Menabrea on the Analytical Engine. She added notes that were "
    "longer than the article itself. Note G describes an algorithm for computing Bernoulli numbers."
)
HOPPER = "Hopper was born in New York City. She studied mathematics at Vassar College."
QUAC_DEV = [
    rec("C_ada1_1_q#0", "Ada Lovelace: Analytical Engine", ADA, "What did she translate?", [("an article by Luigi Menabrea", 28)]),
    rec(
        "C_ada1_1_q#1",
        "Ada Lovelace: Analytical Engine",
        ADA,
        "Did she add anything to it?",
        [("She added notes that were longer than the article itself.", 83)],
    ),
    rec("C_ada1_1_q#2", "Ada Lovelace: Analytical Engine", ADA, "Who paid her for it?", []),
    # answer_start was 3 off in the source and the text occurs once: repaired
    rec("C_ada1_1_q#3", "Ada Lovelace: Analytical Engine", ADA, "What is in Note G?", [("an algorithm for computing Bernoulli numbers", 158)]),
    # C_ada1_1_q#4: "article" is not at its answer_start and occurs twice, so it cannot be placed: dropped
    rec("C_hop1_0_q#0", "Grace Hopper: Early life", HOPPER, "Where was she born?", [("New York City", 19)]),
    rec("C_hop1_0_q#1", "Grace Hopper: Early life", HOPPER, "What about her father?", []),
]


def test_quac_turns_become_standalone_questions_without_the_sentinel(cache_dir):
    dataset, stats = convert_named_split("quac", "validation", str(FIXTURES / "quac"), cache_dir)
    records = list(dataset)
    assert records == QUAC_DEV
    assert_aligned(records)
    assert all("CANNOTANSWER" not in r["context"] for r in records)
    assert counts(stats) == (6, 4, 2, 1, 1)


def test_quac_has_no_hub_copy_and_says_which_file_to_get():
    with pytest.raises(QADataError, match=r"val_v0\.2\.json.*--data_dir"):
        load_named_split("quac", "validation")


def test_quac_file_through_load_qa_split_and_load_named_file(cache_dir):
    via_split = load_qa_split("validation", dataset_name="quac", data_dir=str(FIXTURES / "quac"), cache_dir=cache_dir)
    assert list(via_split) == QUAC_DEV
    assert list(load_named_file("quac", str(FIXTURES / "quac" / "val_v0.2.json"), cache_dir)) == QUAC_DEV


# --- NewsQA ---------------------------------------------------------------------------------------------------

STORY_A = "WASHINGTON ( CNN ) -- The Senate passed the bill on Tuesday , 60 to 39 . The vote followed weeks  of debate ."
STORY_B = "Rescuers found the hiker alive on Sunday ."
NEWSQA_CSV_DEV = [
    rec("aaa111_q0", "aaa111", STORY_A, "When did the Senate pass the bill ?", [("Tuesday", 52)]),  # first of two ranges
    rec("aaa111_q1", "aaa111", STORY_A, "What was the vote ?", [("60 to 39", 62)]),
    rec("aaa111_q2", "aaa111", STORY_A, "Who opposed the bill ?", []),  # empty cell
    rec("aaa111_q3", "aaa111", STORY_A, "How long did the vote take ?", []),  # -1:-1
    rec("aaa111_q4", "aaa111", STORY_A, "What came before the vote ?", [("weeks  of debate", 91)]),  # spacing kept
    rec("bbb222_q0", "bbb222", STORY_B, "Who was found ?", [("the hiker", 15)]),
    rec("bbb222_q1", "bbb222", STORY_B, "Where was the hiker ?", []),  # 5:5, an empty range
]
LOBSTER = (
    "LONDON, England (CNN) -- A rare blue lobster was caught off the coast of Cornwall on Friday.\n\n"
    "The lobster will live in an aquarium in Newquay."
)
LOUVRE = "PARIS, France (CNN) -- The Louvre closed for a day after staff walked out."
NEWSQA_JSON_DEV = [
    rec("ccc333_q0", "ccc333", LOBSTER, "What was caught?", [("A rare blue lobster", 25)]),  # trailing space trimmed
    rec("ccc333_q1", "ccc333", LOBSTER, "Who caught it?", []),  # noAnswer
    # ccc333_q2 is a badQuestion: dropped
    rec("ccc333_q3", "ccc333", LOBSTER, "Where will it live?", [("in an aquarium in Newquay.", 116)]),  # end clipped
]
NEWSQA_JSON_TRAIN = [rec("ddd444_q0", "ddd444", LOUVRE, "What closed?", [("The Louvre", 23)])]


def test_newsqa_split_csv_maps_the_first_token_range_to_characters(cache_dir):
    dataset, stats = convert_named_split("newsqa", "validation", str(FIXTURES / "newsqa"), cache_dir)
    records = list(dataset)
    assert records == NEWSQA_CSV_DEV
    assert_aligned(records)
    assert counts(stats) == (7, 4, 3, 0, 0)


def test_newsqa_combined_json_by_split(cache_dir):
    path = str(FIXTURES / "newsqa" / "combined-newsqa-data-v1.json")
    dataset, stats = convert_named_file("newsqa", path, cache_dir, split="validation")
    assert list(dataset) == NEWSQA_JSON_DEV
    assert_aligned(list(dataset))
    assert counts(stats) == (3, 2, 1, 1, 1)
    assert list(load_named_file("newsqa", path, cache_dir, split="train")) == NEWSQA_JSON_TRAIN
    assert list(load_named_file("newsqa", path, cache_dir)) == NEWSQA_JSON_DEV + NEWSQA_JSON_TRAIN
    # --data_dir without split CSVs for a split falls back to the combined JSON
    assert list(load_named_split("newsqa", "train", str(FIXTURES / "newsqa"), cache_dir)) == NEWSQA_JSON_TRAIN


def test_newsqa_ids_are_the_same_on_every_run(tmp_path):
    first = load_named_split("newsqa", "validation", str(FIXTURES / "newsqa"), str(tmp_path / "a"))
    second = load_named_split("newsqa", "validation", str(FIXTURES / "newsqa"), str(tmp_path / "b"))
    assert first["id"][:] == second["id"][:] == [r["id"] for r in NEWSQA_CSV_DEV]


# --- TriviaQA -------------------------------------------------------------------------------------------------

ABBEY = (
    "Abbey Road is the eleventh studio album by the English rock band the Beatles, released on 26 September 1969.\n\n"
    "It was recorded at EMI Studios in London."
)
HIMALAYAS = "The Himalayas include the highest peak on Earth,  known in Tibetan as chomolungma.\nMany climbers attempt it each year."


def test_trivia_qa_one_example_per_document_first_alias_in_800_tokens(cache_dir):
    dataset, stats = convert_named_split("trivia_qa", "validation", str(FIXTURES / "triviaqa"), cache_dir)
    records = list(dataset)
    long_page = (FIXTURES / "triviaqa" / "evidence" / "wikipedia" / "Long_Page.txt").read_text(encoding="utf-8")
    long_context = records[1]["context"]
    # exactly the first 800 whitespace tokens, as an exact prefix of the document; the answer lies beyond them
    assert long_context.split() == [f"w{i:03d}" for i in range(1, 801)]
    assert long_page.startswith(long_context) and long_context.endswith("w800")
    assert records == [
        # "The Beatles" (first alias) is absent, "Beatles" (second) is present
        rec("tc_1--Abbey_Road.txt", "Abbey Road", ABBEY, "Which band recorded Abbey Road?", [("Beatles", 69)]),
        rec("tc_1--Long_Page.txt", "Long Page", long_context, "Which band recorded Abbey Road?", []),
        # only a normalised alias occurs
        rec("tc_2--Himalayas.txt", "Himalayas", HIMALAYAS, "What is the highest mountain?", [("chomolungma", 70)]),
        # no alias occurs; the same document listed again is dropped
        rec("tc_3--Abbey_Road.txt", "Abbey Road", ABBEY, "Where is the Louvre?", []),
    ]
    assert_aligned(records)
    assert counts(stats) == (4, 2, 2, 0, 1)


def test_trivia_qa_hub_rows_stream_through_the_same_conversion(fake_hub, cache_dir):
    calls = fake_hub(FIXTURES / "triviaqa" / "hub_rows.json")
    from_hub = list(load_named_split("trivia_qa", "validation", None, cache_dir))
    from_files = list(load_named_split("trivia_qa", "validation", str(FIXTURES / "triviaqa"), cache_dir))
    assert calls == [(("mandarjoshi/trivia_qa", "rc.wikipedia"), {"split": "validation", "streaming": True})]
    assert from_hub == from_files[:2]


def test_trivia_qa_missing_evidence_names_the_question_and_file(tmp_path, cache_dir):
    data_dir = tmp_path / "triviaqa"
    shutil.copytree(FIXTURES / "triviaqa", data_dir)
    (data_dir / "evidence" / "wikipedia" / "Himalayas.txt").unlink()
    with pytest.raises(QADataError, match=r"wikipedia-dev\.json: question 'tc_2': evidence file .*Himalayas\.txt not found"):
        load_named_split("trivia_qa", "validation", str(data_dir), cache_dir)


# --- Natural Questions ----------------------------------------------------------------------------------------

EIFFEL = rec(
    "5225754983651766092",
    "Eiffel Tower",
    "The Eiffel Tower was completed in 1889 by Gustave Eiffel 's company .",
    "when was the eiffel tower completed",
    [("1889", 34), ("Gustave Eiffel 's company", 42)],
)
NQ_DEV = [
    # 3 of 5 annotators chose the paragraph (one the table, one nothing); <B> tags are left out; the table's
    # short answer lies outside the paragraph
    EIFFEL,
    # (a table long answer, and an example where only one of five annotators chose a long answer: both dropped)
    rec("8811024938123477002", "Tomato", "Tomatoes are botanically fruits .", "is a tomato a fruit", []),  # yes/no only
    # a 2-2 tie goes to the first annotator's paragraph; only one annotator gave a short answer
    rec("-7123004588123999001", "Ada Lovelace", "She was born in London .", "where was ada lovelace born", []),
]


def test_natural_questions_original_layout(cache_dir):
    dataset, stats = convert_named_split("natural_questions", "validation", str(FIXTURES / "nq"), cache_dir)
    assert list(dataset) == NQ_DEV
    assert_aligned(list(dataset))
    assert counts(stats) == (3, 1, 2, 0, 2)
    assert stats.reasons == {
        "dropped (long answer is not a paragraph)": 1,
        "dropped (no long answer)": 1,
        "unanswerable (yes/no answer only)": 1,
        "unanswerable (fewer than two annotators gave a short answer)": 1,
    }


def test_natural_questions_gzipped_files_and_simplified_layout(tmp_path, cache_dir):
    data_dir = tmp_path / "nq"
    (data_dir / "dev").mkdir(parents=True)
    with gzip.open(data_dir / "dev" / "nq-dev-00.jsonl.gz", "wb") as handle:
        handle.write((FIXTURES / "nq" / "dev" / "nq-dev-00.jsonl").read_bytes())
    assert list(load_named_split("natural_questions", "validation", str(data_dir), cache_dir)) == NQ_DEV

    dataset, stats = convert_named_split("natural_questions", "train", str(FIXTURES / "nq"), cache_dir)
    assert list(dataset) == [
        rec(
            "6001",
            "The Beatles",  # from the document URL: the simplified layout has no title
            "The band members were John Lennon , Paul McCartney , George Harrison and Ringo Starr .",
            "who were the members of the beatles",
            [("John Lennon", 22), ("Paul McCartney", 36)],  # one annotation, two short-answer spans
        )
    ]
    assert counts(stats) == (1, 1, 0, 0, 1)  # the list (<Ul>) long answer is dropped


def test_natural_questions_hub_layout_is_streamed_and_converted_alike(fake_hub, cache_dir):
    calls = fake_hub(FIXTURES / "nq" / "hub_rows.json")
    assert list(load_named_split("natural_questions", "validation", None, cache_dir)) == [EIFFEL]
    assert calls == [(("google-research-datasets/natural_questions", "default"), {"split": "validation", "streaming": True})]


def test_unreachable_hub_says_how_to_work_offline(monkeypatch, cache_dir):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the hub")

    monkeypatch.setattr(qa_adapters, "load_dataset", offline)
    with pytest.raises(QADataError, match=r"natural_questions/default/train: cannot load the hub copy.*--data_dir"):
        load_named_split("natural_questions", "train", None, cache_dir)


@pytest.mark.parametrize("name", sorted(qa_adapters.ADAPTERS))
def test_every_dataset_offline_names_the_flag_that_fixes_it(name, monkeypatch, cache_dir):
    def offline(*args, **kwargs):
        raise ConnectionError("OfflineModeIsEnabled: offline mode is enabled")

    monkeypatch.setattr(qa_adapters, "load_dataset", offline)
    with pytest.raises(QADataError, match=r"--data_dir DIR.*--validation_file"):
        load_named_split(name, "validation", None, cache_dir)


# --- MRQA -----------------------------------------------------------------------------------------------------


def test_mrqa_places_detected_answers_at_their_char_spans(cache_dir):
    context = "A rare blue lobster was caught off the coast of Cornwall on Friday. It will live in an aquarium."
    dataset, stats = convert_named_split("mrqa", "validation", str(FIXTURES / "mrqa"), cache_dir)
    assert list(dataset) == [
        rec("7d1f6c0a3e9b4f2c8a5d0e1b2c3d4e5f", "NewsQA", context, "What was caught?", [("blue lobster", 7), ("A rare blue lobster", 0)]),
        # the detected text is "cornwall": the answer text is read from the context span
        rec("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "NewsQA", context, "Where was it caught?", [("Cornwall", 48)]),
    ]
    assert counts(stats) == (2, 2, 0, 0, 1)  # a question with no char span is dropped


# --- Cache ----------------------------------------------------------------------------------------------------


def test_second_load_reuses_the_cache_until_the_source_changes(tmp_path, monkeypatch, cache_dir):
    data_dir = tmp_path / "quac"
    shutil.copytree(FIXTURES / "quac", data_dir)
    reads = []
    real_read = quac.read_json_document

    def counting_read(path):
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(quac, "read_json_document", counting_read)
    first, first_stats = convert_named_split("quac", "validation", str(data_dir), cache_dir)
    second, second_stats = convert_named_split("quac", "validation", str(data_dir), cache_dir)
    assert len(reads) == 1
    assert list(second) == list(first) == QUAC_DEV
    assert second.cache_files == first.cache_files and second.cache_files[0]["filename"].startswith(cache_dir)
    assert second_stats == first_stats  # the counts are kept beside the cached split

    source = data_dir / "val_v0.2.json"
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    convert_named_split("quac", "validation", str(data_dir), cache_dir)
    assert len(reads) == 2


# --- Bad input ------------------------------------------------------------------------------------------------


def _truncated_copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: len(source.read_bytes()) // 2])
    return target


def _gzip_truncated(source: Path, target: Path) -> Path:
    packed = gzip.compress(source.read_bytes())
    target.write_bytes(packed[: len(packed) * 2 // 3])
    return target


def _edit_json(source: Path, target: Path, edit) -> Path:
    obj = json.loads(source.read_text(encoding="utf-8"))
    edit(obj)
    target.write_text(json.dumps(obj), encoding="utf-8")
    return target


def _replace_line(source: Path, target: Path, line_no: int, text: str) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[line_no - 1] = text
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


BAD_INPUTS = {
    "truncated QuAC JSON": (
        "quac",
        lambda tmp: _truncated_copy(FIXTURES / "quac" / "val_v0.2.json", tmp / "val_v0.2.json"),
        r"val_v0\.2\.json: not valid JSON at line \d+",
    ),
    "QuAC turn without orig_answer": (
        "quac",
        lambda tmp: _edit_json(
            FIXTURES / "quac" / "val_v0.2.json",
            tmp / "val_v0.2.json",
            lambda obj: obj["data"][1]["paragraphs"][0]["qas"][1].pop("orig_answer"),
        ),
        r"val_v0\.2\.json: turn 'C_hop1_0_q#1': missing field 'orig_answer'",
    ),
    "truncated NQ gzip": (
        "natural_questions",
        lambda tmp: _gzip_truncated(FIXTURES / "nq" / "dev" / "nq-dev-00.jsonl", tmp / "nq-dev-00.jsonl.gz"),
        r"nq-dev-00\.jsonl\.gz: (line \d+: not valid JSON|unreadable after line \d+: truncated)",
    ),
    "NQ line that is not JSON": (
        "natural_questions",
        lambda tmp: _replace_line(FIXTURES / "nq" / "dev" / "nq-dev-00.jsonl", tmp / "nq-dev-00.jsonl", 3, '{"annotations": ['),
        r"nq-dev-00\.jsonl: line 3: not valid JSON",
    ),
    "NQ example without a question": (
        "natural_questions",
        lambda tmp: _replace_line(
            FIXTURES / "nq" / "simplified-nq-train.jsonl",
            tmp / "simplified-nq-train.jsonl",
            2,
            '{"document_text": "<P> x </P>", "annotations": [], "example_id": 7001}',
        ),
        r"simplified-nq-train\.jsonl: line 2: missing field 'question_text'",
    ),
    "NQ long answer beyond the document": (
        "natural_questions",
        lambda tmp: _replace_line(
            FIXTURES / "nq" / "simplified-nq-train.jsonl",
            tmp / "simplified-nq-train.jsonl",
            1,
            '{"document_text": "<P> x </P>", "question_text": "q", "example_id": 6001, "annotations": '
            '[{"long_answer": {"start_token": 0, "end_token": 9}, "short_answers": [], "yes_no_answer": "NONE"}]}',
        ),
        r"simplified-nq-train\.jsonl: line 1 \(example 6001\): token span 0:9 lies outside the document's 3 tokens",
    ),
    "NewsQA CSV with a malformed range": (
        "newsqa",
        lambda tmp: _replace_line(
            FIXTURES / "newsqa" / "split_data" / "dev.csv", tmp / "dev.csv", 7, "./cnn/stories/bbb222.story,a b c,Who ?,two:three"
        ),
        r"dev\.csv: row 6 \(bbb222_q0\): answer_token_ranges 'two:three' is not of the form",
    ),
    "NewsQA CSV range beyond the story": (
        "newsqa",
        lambda tmp: _replace_line(FIXTURES / "newsqa" / "split_data" / "dev.csv", tmp / "dev.csv", 2, "./cnn/stories/x.story,a b c,Who ?,2:7"),
        r"dev\.csv: row 1 \(x_q0\): answer tokens 2:7 lie beyond the story's 3 tokens",
    ),
    "NewsQA CSV without its answer column": (
        "newsqa",
        lambda tmp: _replace_line(FIXTURES / "newsqa" / "split_data" / "dev.csv", tmp / "dev.csv", 1, "story_id,story_text,question,answers"),
        r"dev\.csv: header lacks column\(s\) answer_token_ranges",
    ),
    "NewsQA question without consensus": (
        "newsqa",
        lambda tmp: _edit_json(
            FIXTURES / "newsqa" / "combined-newsqa-data-v1.json",
            tmp / "combined-newsqa-data-v1.json",
            lambda obj: obj["data"][0]["questions"][1].pop("consensus"),
        ),
        r"combined-newsqa-data-v1\.json: question 'ccc333_q1': missing field 'consensus'",
    ),
    "MRQA line that is not JSON": (
        "mrqa",
        lambda tmp: _replace_line(FIXTURES / "mrqa" / "dev" / "NewsQA.jsonl", tmp / "NewsQA.jsonl", 3, '{"context": "x", "qas": [{"qid"'),
        r"NewsQA\.jsonl: line 3: not valid JSON",
    ),
    "TriviaQA file that is not JSON": (
        "trivia_qa",
        lambda tmp: _truncated_copy(FIXTURES / "triviaqa" / "qa" / "wikipedia-dev.json", tmp / "wikipedia-dev.json"),
        r"wikipedia-dev\.json: not valid JSON",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_source_files_raise_one_clear_error_and_cache_nothing(case, tmp_path, cache_dir):
    name, make_file, message = BAD_INPUTS[case]
    path = make_file(tmp_path)
    with pytest.raises(QADataError, match=message) as error:
        load_named_file(name, str(path), cache_dir)
    assert str(path) in str(error.value)
    arrow_files = list(Path(cache_dir).rglob("*.arrow")) if Path(cache_dir).exists() else []
    assert arrow_files == []


def test_missing_files_and_splits_are_named(tmp_path, cache_dir):
    with pytest.raises(QADataError, match=r"nowhere/val_v0\.2\.json: file not found"):
        load_named_file("quac", str(tmp_path / "nowhere" / "val_v0.2.json"), cache_dir)
    with pytest.raises(QADataError, match=r"no natural_questions validation file found \(looked for dev/\*\.jsonl\.gz"):
        load_named_split("natural_questions", "validation", str(tmp_path), cache_dir)
    with pytest.raises(QADataError, match=r"quac has no test split"):
        load_named_split("quac", "test", str(FIXTURES / "quac"), cache_dir)
    with pytest.raises(QADataError, match=r"unknown dataset 'coqa'"):
        load_named_split("coqa", "validation")


# --- SQuAD-format files and the converter CLI --------------------------------------------------------------------


def test_convert_cli_writes_squad_v2_that_loads_back_unchanged(tmp_path, cache_dir, capsys):
    output = tmp_path / "quac_dev.json"
    argv = ["--dataset", "quac", "--input", str(FIXTURES / "quac" / "val_v0.2.json"), "--output", str(output)]
    assert convert_qa.main([*argv, "--cache_dir", cache_dir]) == 0
    printed = capsys.readouterr().out
    assert "6 questions (4 answerable, 2 unanswerable), 1 answer offsets repaired, 1 dropped" in printed

    written = json.loads(output.read_text(encoding="utf-8"))
    assert written["version"] == "v2.0"
    assert [a["title"] for a in written["data"]] == ["Ada Lovelace: Analytical Engine", "Grace Hopper: Early life"]
    assert [len(p["qas"]) for a in written["data"] for p in a["paragraphs"]] == [4, 2]
    assert written["data"][0]["paragraphs"][0]["qas"][2] == {
        "id": "C_ada1_1_q#2",
        "question": "Who paid her for it?",
        "answers": [],
        "is_impossible": True,
    }
    assert list(load_qa_file(output)) == QUAC_DEV
    # a SQuAD-format file named with a dataset goes to the plain loader, not the official-layout converter
    assert list(load_named_file("quac", str(output), cache_dir)) == QUAC_DEV


def test_convert_cli_from_a_data_dir(tmp_path, cache_dir, capsys):
    output = tmp_path / "newsqa_dev.json"
    argv = ["--dataset", "newsqa", "--data_dir", str(FIXTURES / "newsqa"), "--split", "dev", "--output", str(output)]
    assert convert_qa.main([*argv, "--cache_dir", cache_dir]) == 0
    assert list(load_qa_file(output)) == NEWSQA_CSV_DEV
    assert "7 questions (4 answerable, 3 unanswerable)" in capsys.readouterr().out


def test_convert_cli_error_writes_nothing(tmp_path, cache_dir, capsys):
    bad = _truncated_copy(FIXTURES / "quac" / "val_v0.2.json", tmp_path / "val_v0.2.json")
    output = tmp_path / "out.json"
    assert convert_qa.main(["--dataset", "quac", "--input", str(bad), "--output", str(output), "--cache_dir", cache_dir]) == 2
    assert "val_v0.2.json: not valid JSON" in capsys.readouterr().err
    assert not output.exists()
    with pytest.raises(SystemExit):
        convert_qa.main(["--dataset", "quac", "--data_dir", str(FIXTURES / "quac"), "--output", str(output)])


SHARED_NQ = Path("/work/shared/data/natural_questions/nq_dev.mrqa_cmr.squad2.json.gz")


@pytest.mark.skipif(not SHARED_NQ.exists(), reason="shared benchmark data not present")
def test_real_squad_format_nq_file_is_read_by_the_plain_loader(cache_dir):
    dataset = load_named_file("natural_questions", str(SHARED_NQ), cache_dir)
    assert len(dataset) == 2324
    assert_aligned(list(dataset.select(range(200))))
