"""Loading QA files: both layouts, and one clear error per kind of bad input."""

import gzip
import json

import pytest

from qa_transfer.core.errors import QADataError
from qa_transfer.qa.data import load_qa_file, oversample_unanswerable, select_questions, validate_dataset

CONTEXT = "The tower was built in 1887 by the city."


def squad(qas, context=CONTEXT):
    return {"version": "v2.0", "data": [{"title": "Tower", "paragraphs": [{"context": context, "qas": qas}]}]}


def qa(qid, question="When was the tower built?", text="1887", start=None, impossible=False):
    answers = [] if impossible else [{"text": text, "answer_start": CONTEXT.find(text) if start is None else start}]
    return {"id": qid, "question": question, "answers": answers, "is_impossible": impossible}


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return str(path)


def test_nested_squad_flat_json_and_jsonl_gz_load_the_same(tmp_path):
    nested = write(tmp_path, "n.json", squad([qa("a"), qa("b", impossible=True)]))
    ds = load_qa_file(nested)
    assert ds["id"] == ["a", "b"]
    assert ds[0]["answers"] == {"text": ["1887"], "answer_start": [23]}
    assert ds[1]["answers"] == {"text": [], "answer_start": []}
    flat = [dict(r) for r in ds]
    assert load_qa_file(write(tmp_path, "f.json", flat)).to_list() == ds.to_list()
    gz = tmp_path / "f.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in flat)
    assert load_qa_file(str(gz)).to_list() == ds.to_list()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"data": [ {"title": ', "not valid JSON at line 1"),
        (squad([{"id": "x", "answers": []}]), "question 'x'.*missing field 'question'"),
        (squad([qa("x")], context="   "), "'x'.*empty context"),
        (squad([qa("x", question=" ")]), "'x'.*empty question"),
        (squad([qa("x"), qa("x")]), "duplicate id 'x'"),
        (squad([qa("x", start=3)]), "'x'.*answer 0 '1887' is not at answer_start 3.*repair_answer_offsets"),
        ({"something": 1}, "not a QA file"),
    ],
)
def test_bad_input_names_file_and_record(tmp_path, content, message):
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(QADataError, match=message) as err:
        load_qa_file(path)
    assert str(err.value).startswith(path)


def test_bad_jsonl_line_is_named(tmp_path):
    path = write(tmp_path, "bad.jsonl",
                 json.dumps({"id": "a", "context": "x y", "question": "q", "answers": []}) + "\n{oops\n")
    with pytest.raises(QADataError, match=r"bad.jsonl: line 2: not valid JSON"):
        load_qa_file(path)


def test_missing_answers_is_an_error_except_for_test_files(tmp_path):
    path = write(tmp_path, "t.jsonl", json.dumps({"id": "a", "context": "x y", "question": "q"}) + "\n")
    with pytest.raises(QADataError, match="record 0|line 1.*missing field 'answers'"):
        load_qa_file(path)
    assert load_qa_file(path, require_answers=False)[0]["answers"] == {"text": [], "answer_start": []}


def test_a_file_without_answers_is_logged_as_unlabelled_not_unanswerable(tmp_path, caplog):
    unlabelled = [{"id": str(i), "context": "x y", "question": "q"} for i in range(3)]
    path = write(tmp_path, "t.jsonl", "".join(json.dumps(record) + "\n" for record in unlabelled))
    with caplog.at_level("INFO", logger="qa_transfer"):
        load_qa_file(path, require_answers=False)
    assert f"{path}: 3 questions (unlabelled), 0 answer offsets repaired" in caplog.text
    mixed = [*unlabelled, {"id": "4", "context": "x y", "question": "q", "answers": []},
             {"id": "5", "context": "x y", "question": "q", "answers": [{"text": "y", "answer_start": 2}]}]
    path = write(tmp_path, "m.jsonl", "".join(json.dumps(record) + "\n" for record in mixed))
    caplog.clear()
    with caplog.at_level("INFO", logger="qa_transfer"):
        load_qa_file(path, require_answers=False)
    assert "5 questions (1 answerable, 1 unanswerable, 3 unlabelled)" in caplog.text


def test_misaligned_offsets_repair_only_unique_text(tmp_path, caplog):
    path = write(tmp_path, "m.json", squad([qa("x", start=3), qa("y", text="e", start=0)]))
    with pytest.raises(QADataError, match="'y'.*does not occur exactly once"):
        load_qa_file(path, repair_offsets=True)
    path = write(tmp_path, "m2.json", squad([qa("x", start=3), qa("y", text="tower", start=0)]))
    with caplog.at_level("INFO", logger="qa_transfer.qa.data"):
        ds = load_qa_file(path, repair_offsets=True)
    assert ds["answers"][0]["answer_start"] == [23] and ds["answers"][1]["answer_start"] == [4]
    assert "2 answer offsets repaired" in caplog.text


def test_subsets_are_deterministic_and_count_questions(tmp_path):
    ds = load_qa_file(write(tmp_path, "n.json", squad([qa(f"q{i}") for i in range(20)])))
    assert select_questions(ds, 5, None, "first", 0)["id"] == [f"q{i}" for i in range(5)]
    a = select_questions(ds, 5, None, "random", 42)["id"]
    assert a == select_questions(ds, 5, None, "random", 42)["id"] and a != [f"q{i}" for i in range(5)]
    assert len(select_questions(ds, None, 0.25, "random", 1)) == 5
    assert len(select_questions(ds, 100, None, "random", 1)) == 20


def test_oversampling_repeats_only_the_unanswerable_questions(tmp_path):
    ds = load_qa_file(write(tmp_path, "o.json",
                            squad([qa("a"), qa("b", impossible=True), qa("c"), qa("d", impossible=True)])))
    assert oversample_unanswerable(ds, 1)["id"] == ["a", "b", "c", "d"]
    assert oversample_unanswerable(ds, 3)["id"] == ["a", "b", "c", "d", "b", "d", "b", "d"]
    with pytest.raises(ValueError, match="at least 1"):
        oversample_unanswerable(ds, 0)


def test_validating_a_converted_split_streams_and_repairs_only_when_asked(tmp_path):
    from datasets import Dataset

    from qa_transfer.qa.data import FLAT_FEATURES

    good = load_qa_file(write(tmp_path, "g.json", squad([qa("a"), qa("b", impossible=True)])))
    assert validate_dataset(good, "hub/validation") is good  # nothing repaired: the same Arrow table, no copy
    rows = good.to_list()
    rows[0]["answers"] = {"text": ["1887"], "answer_start": [3]}
    shifted = Dataset.from_list(rows, features=FLAT_FEATURES)
    with pytest.raises(QADataError,
                       match=r"hub/validation: row 0 \(id 'a'\): answer 0 '1887' is not at answer_start 3"):
        validate_dataset(shifted, "hub/validation")
    repaired = validate_dataset(shifted, "hub/validation", repair_offsets=True)
    assert repaired[0]["answers"] == {"text": ["1887"], "answer_start": [23]} and repaired["id"] == ["a", "b"]
