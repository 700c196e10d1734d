"""The dataset adapters on hand-written fixtures in each official layout (tests/fixtures/adapters/): the exact
records each produces, that every answer aligns, the counts, the cache, the hub paths (with a stand-in for the hub)
and the errors on bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import datasets
import pytest
from converter_oracle import newsqa_records, quac_records
from converter_oracle import record as rec  # the flat layout, written out independently of the adapters
from shared import ADAPTER_FIXTURES as FIXTURES
from shared import REPO, assert_aligned, gzip_truncated

import convert_qa
from qa_transfer.core.errors import QADataError
from qa_transfer.core.scripts import run_script
from qa_transfer.qa.data import load_qa_file
from qa_transfer.sources import adapters, quac
from qa_transfer.sources.adapters import convert_named_split, load_named_file, load_named_split

datasets.disable_progress_bars()


def counts(stats) -> tuple[int, int, int, int, int]:
    return stats.questions, stats.answerable, stats.unanswerable, stats.repaired_offsets, stats.dropped


# QuAC and NewsQA: tests/sources/test_quac_newsqa.py (checked against the converter's rules in
# tests/converter_oracle.py).
QUAC_DEV = quac_records(str(FIXTURES / "quac" / "val_v0.2.json"))


# --- Hub (TriviaQA and Natural Questions: test_conversions_tqa_nq.py) -----------------------------------------


def test_unreachable_hub_says_how_to_work_offline(monkeypatch, cache_dir):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the hub")

    monkeypatch.setattr(adapters, "load_dataset", offline)
    with pytest.raises(QADataError, match=r"natural_questions/default/train: cannot load the hub copy.*--data_dir"):
        load_named_split("natural_questions", "train", None, cache_dir)


@pytest.mark.parametrize("name", sorted(adapters.ADAPTERS))
def test_every_dataset_offline_names_the_flag_that_fixes_it(name, monkeypatch, cache_dir):
    def offline(*args, **kwargs):
        raise ConnectionError("OfflineModeIsEnabled: offline mode is enabled")

    monkeypatch.setattr(adapters, "load_dataset", offline)
    with pytest.raises(QADataError, match=r"--data_dir DIR.*--validation_file"):
        load_named_split(name, "validation", None, cache_dir)


# --- MRQA -----------------------------------------------------------------------------------------------------


def test_mrqa_places_detected_answers_at_their_char_spans(cache_dir):
    context = "A rare blue lobster was caught off the coast of Cornwall on Friday. It will live in an aquarium."
    dataset, stats = convert_named_split("mrqa", "validation", str(FIXTURES / "mrqa"), cache_dir)
    assert list(dataset) == [
        rec("7d1f6c0a3e9b4f2c8a5d0e1b2c3d4e5f", "NewsQA", context, "What was caught?",
            [("blue lobster", 7), ("A rare blue lobster", 0)]),
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
        lambda tmp: gzip_truncated(FIXTURES / "nq" / "dev" / "nq-dev-00.jsonl", tmp / "nq-dev-00.jsonl.gz"),
        r"nq-dev-00\.jsonl\.gz: (line \d+: not valid JSON|unreadable after line \d+: truncated)",
    ),
    "NQ line that is not JSON": (
        "natural_questions",
        lambda tmp: _replace_line(
            FIXTURES / "nq" / "dev" / "nq-dev-00.jsonl", tmp / "nq-dev-00.jsonl", 3, '{"annotations": ['
        ),
        r"nq-dev-00\.jsonl: line 3: not valid JSON",
    ),
    "NewsQA CSV with a malformed range": (
        "newsqa",
        lambda tmp: _replace_line(
            FIXTURES / "newsqa" / "split_data" / "dev.csv", tmp / "dev.csv", 7,
            "./cnn/stories/bbb222.story,a b c,Who ?,two:three",
        ),
        r"dev\.csv: row 6 \(bbb222_q0\): answer_token_ranges 'two:three' is not of the form",
    ),
    "QuAC orig_answer without an integer offset": (
        "quac",
        lambda tmp: _edit_json(
            FIXTURES / "quac" / "val_v0.2.json",
            tmp / "val_v0.2.json",
            lambda obj: obj["data"][0]["paragraphs"][0]["qas"][3]["orig_answer"].update(answer_start="40"),
        ),
        r"val_v0\.2\.json: turn 'C_ada1_1_q#3': orig_answer needs a string 'text' and an integer 'answer_start'",
    ),
    "NewsQA CSV without its answer column": (
        "newsqa",
        lambda tmp: _replace_line(
            FIXTURES / "newsqa" / "split_data" / "dev.csv", tmp / "dev.csv", 1, "story_id,story_text,question,answers"
        ),
        r"dev\.csv: header lacks column\(s\) answer_token_ranges",
    ),
    "NewsQA question without consensus": (
        "newsqa_combined_json",
        lambda tmp: _edit_json(
            FIXTURES / "newsqa" / "combined-newsqa-data-v1.json",
            tmp / "combined-newsqa-data-v1.json",
            lambda obj: obj["data"][0]["questions"][1].pop("consensus"),
        ),
        r"combined-newsqa-data-v1\.json: question 'ccc333_q1': missing field 'consensus'",
    ),
    "MRQA line that is not JSON": (
        "mrqa",
        lambda tmp: _replace_line(
            FIXTURES / "mrqa" / "dev" / "NewsQA.jsonl", tmp / "NewsQA.jsonl", 3, '{"context": "x", "qas": [{"qid"'
        ),
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
    assert "9 questions (7 answerable, 2 unanswerable), 0 answer offsets repaired, 0 dropped" in printed

    written = json.loads(output.read_text(encoding="utf-8"))
    assert written["version"] == "v2.0"
    assert [a["title"] for a in written["data"]] == ["Ada Lovelace: Analytical Engine", "Grace Hopper: Early life"]
    assert [len(p["qas"]) for a in written["data"] for p in a["paragraphs"]] == [5, 4]
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
    assert list(load_qa_file(output)) == newsqa_records(str(FIXTURES / "newsqa" / "split_data" / "dev.csv"))
    assert "13 questions (8 answerable, 5 unanswerable)" in capsys.readouterr().out


def test_convert_cli_error_writes_nothing(tmp_path, cache_dir):
    bad = _truncated_copy(FIXTURES / "quac" / "val_v0.2.json", tmp_path / "val_v0.2.json")
    output = tmp_path / "out.json"
    argv = ["--dataset", "quac", "--input", str(bad), "--output", str(output), "--cache_dir", cache_dir]
    with pytest.raises(QADataError, match=r"val_v0\.2\.json: not valid JSON"):
        convert_qa.main(argv)
    with pytest.raises(SystemExit) as exit_info:  # the entry point: one line on stderr, exit status 1
        run_script(convert_qa.main, argv)
    assert str(exit_info.value.code).startswith("error: ") and "val_v0.2.json: not valid JSON" in exit_info.value.code
    assert not output.exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error
        convert_qa.main(["--dataset", "quac", "--data_dir", str(FIXTURES / "quac"), "--output", str(output)])
    assert exit_info.value.code == 2


# The shared data lies beside the repository (../shared), in a checkout and in CI alike.
SHARED_NQ = (REPO.parent / "shared" / "data" / "natural_questions"
             / "nq_dev.mrqa_cmr.squad2.json.gz")


@pytest.mark.skipif(not SHARED_NQ.exists(), reason="shared benchmark data not present")
def test_real_squad_format_nq_file_is_read_by_the_plain_loader(cache_dir):
    dataset = load_named_file("natural_questions", str(SHARED_NQ), cache_dir)
    assert len(dataset) == 2324
    assert_aligned(list(dataset.select(range(200))))
