"""classification/data.py in-process: where a row is, file checks, labels and their names."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset
from shared import REPO
from transformers import BertConfig

from qa_transfer.classification.data import (
    check_input_paths,
    data_row_start_lines,
    default_id_column,
    first_rows,
    label_ids,
    line_location,
    load_table,
    read_input_files,
    resolve_label_names,
    row_location,
    sorted_label_names,
    split_class_names,
)
from qa_transfer.core.errors import ArgumentError, InputError, UsageError

FIXTURES = REPO / "tests" / "fixtures" / "classification"
LABEL_NAMES = ["neutral", "anti-vax", "pro-vax"]


def test_input_error_is_a_usage_error():
    assert issubclass(InputError, UsageError)


def test_csv_rows_are_counted_by_records_not_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b',tweet,label\n0,one,0\n1,"two\r\nlines",1\n\n2,three,2\n')
    assert data_row_start_lines(path) == [2, 3, 6]  # the blank line 5 holds no row
    assert row_location(path, 2) == "row 2 (line 6)"
    assert row_location(path, 9) == "row 9"  # past the end: no line to name
    assert line_location(path, 4) == "row 1 (line 4)"  # inside the quoted line break of row 1
    assert line_location(path, 1) == "line 1 (header)"


def test_json_lines_rows_skip_blank_lines_and_a_json_array_has_no_lines(tmp_path):
    lines = tmp_path / "t.jsonl"
    lines.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert data_row_start_lines(lines) == [1, 3]
    array = tmp_path / "t.json"
    array.write_text('[{"a": 1},\n {"a": 2}]')
    assert data_row_start_lines(array) is None and row_location(array, 1) == "row 1"


def test_input_paths_need_a_supported_suffix_and_must_exist(tmp_path):
    check_input_paths({"train_file": str(FIXTURES / "train.csv"), "test_file": None})
    with pytest.raises(InputError, match=r"t\.txt: --train_file must be a \.csv, \.json or \.jsonl file"):
        check_input_paths({"train_file": str(tmp_path / "t.txt")})
    with pytest.raises(InputError, match=r"v\.csv: no such file \(--validation_file\)"):
        check_input_paths({"validation_file": str(tmp_path / "v.csv")})


def test_each_file_is_loaded_as_its_own_split(tmp_path):
    # datasets logs "Generating <split> split": a validation file is not announced as the train split.
    assert str(load_table(FIXTURES / "validation.csv", str(tmp_path), "validation").split) == "validation"


def test_an_empty_file_and_a_broken_json_array_are_named(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("\n \n")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        load_table(empty, str(tmp_path))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"tweet": "a", "label": 0},\n {"tweet": "b" "label": 1}]')
    with pytest.raises(InputError, match=r"broken\.json, line 2, column \d+: not valid JSON"):
        load_table(broken, str(tmp_path))


def test_cells_reading_na_stay_text(tmp_path):
    path = tmp_path / "na.csv"
    path.write_text("tweet,label\nNA,0\nnull,1\n")
    assert load_table(path, str(tmp_path))["tweet"][:] == ["NA", "null"]


def test_read_input_files_checks_the_columns_each_split_needs(tmp_path):
    files = {"train": FIXTURES / "train.csv", "test": FIXTURES / "test_unlabelled.csv"}
    datasets = read_input_files(files, "tweet", "label", None, str(tmp_path))
    assert (len(datasets["train"]), len(datasets["test"])) == (36, 5)
    with pytest.raises(InputError, match=r"test_unlabelled\.csv: no column 'row_id' .*set --id_column"):
        read_input_files(files, "tweet", "label", "row_id", str(tmp_path))
    # the test split needs no label column; a labelled split does
    with pytest.raises(InputError, match=r"test_unlabelled\.csv: no column 'label' .*set --label_column"):
        read_input_files({"validation": FIXTURES / "test_unlabelled.csv"}, "tweet", "label", None, str(tmp_path))


def test_a_text_column_of_numbers_is_named_with_its_row(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("tweet,label\n12,0\n13,1\n")
    with pytest.raises(InputError, match=r"numbers\.csv, row 0 \(line 2\): column 'tweet' holds 12, not text "
                                         r"\(1 more rows have problems\)"):
        read_input_files({"train": path}, "tweet", "label", None, str(tmp_path))


def test_first_rows_and_the_default_id_column():
    dataset = Dataset.from_dict({"x": list(range(5))})
    assert len(first_rows(dataset, None)) == 5 and first_rows(dataset, 2)["x"][:] == [0, 1]
    assert len(first_rows(dataset, 50)) == 5
    assert default_id_column(["Unnamed: 0", "id", "tweet"]) == "id"
    assert default_id_column(["Unnamed: 0", "tweet"]) == "Unnamed: 0"
    assert default_id_column(["tweet"]) is None


def test_label_ids_accept_names_ids_and_their_text_forms():
    values = ["pro-vax", 0, "1", 2.0, " neutral "]
    assert label_ids(values, LABEL_NAMES, Path("x.csv"), "label") == [2, 0, 1, 2, 0]
    # a name wins over an id: with names "1","2","3", the label 1 is the class named "1"
    assert label_ids([1, 3], ["1", "2", "3"], Path("x.csv"), "label") == [0, 2]


def test_label_ids_name_the_first_bad_row_and_count_the_others(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("tweet,label\na,0\nb,5\nc,\nd,maybe\n")
    with pytest.raises(InputError, match=r"x\.csv, row 1 \(line 3\): label 5 is not one of the declared labels "
                                         r"\(neutral, anti-vax, pro-vax\) or their ids 0-2 \(2 more rows"):
        label_ids([0, 5, None, "maybe"], LABEL_NAMES, path, "label")
    with pytest.raises(InputError, match=r"row 0 \(line 2\): no label in column 'stance'"):
        label_ids([float("nan")], LABEL_NAMES, path, "stance")


def test_class_names_from_a_flag_or_a_config_list():
    assert split_class_names("neutral, anti-vax,pro-vax") == LABEL_NAMES
    assert split_class_names(["neutral", "anti-vax", "pro-vax"]) == LABEL_NAMES
    for bad in ("a", "a,a", ["a", ""]):
        with pytest.raises(ArgumentError, match="--class_names needs two or more distinct, non-empty names"):
            split_class_names(bad)


def test_label_names_come_from_the_flag_the_model_or_the_training_file():
    plain_config = BertConfig(num_labels=3)  # LABEL_0, LABEL_1, LABEL_2
    named_config = BertConfig(id2label=dict(enumerate(LABEL_NAMES)))
    train_labels = [10, 2, 0, 2.0, 1, None]
    assert sorted_label_names(train_labels) == ["0", "1", "2", "10"]  # numerically, not as text
    assert sorted_label_names(["pro", "anti", "pro"]) == ["anti", "pro"]
    assert resolve_label_names(None, plain_config, train_labels) == ["0", "1", "2", "10"]
    assert resolve_label_names(None, named_config, train_labels) == LABEL_NAMES
    assert resolve_label_names(["b", "a"], named_config, train_labels) == ["b", "a"]
    with pytest.raises(ArgumentError, match="give --class_names"):
        resolve_label_names(None, plain_config, None)
