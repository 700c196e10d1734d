"""The classifier's input files: reading and checking them, pointing at a bad row, and turning labels into ids.

Every function takes paths and column names. A problem with a file is one InputError that names the file and the
row ("row 7 (line 9)": rows count from 0 after any header, as the vaccine files' own index column does; the line
is where the row starts in the file), raised before the script writes anything.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transformers
from datasets import Dataset, load_dataset

from qa_transfer.core.columns import column_list
from qa_transfer.core.errors import ArgumentError, InputError

SUPPORTED_SUFFIXES = (".csv", ".json", ".jsonl")
# pandas names an empty header cell "Unnamed: 0"; the vaccine files keep their row index there.
UNNAMED_INDEX_COLUMN = "Unnamed: 0"
# The column of label ids the model trains on; the Trainer's default label key for a classifier.
LABEL_IDS_COLUMN = "labels"


@dataclass(frozen=True)
class HubDataset:
    """A hub dataset to read instead of files (--dataset_name, --dataset_config_name, --token)."""

    name: str
    config: str | None = None
    token: str | None = None


# --- Where a row is -------------------------------------------------------------------------------------------


def is_json_array(path: Path, text: str) -> bool:
    """A .json file holding one array of records; any other JSON input is read as JSON Lines."""
    return path.suffix.lower() == ".json" and text.lstrip().startswith("[")


def data_row_start_lines(path: Path) -> list[int] | None:
    """The file line where each data row starts: CSV records after the header (a record may span lines) or
    the non-blank lines of JSON Lines. None for a JSON array, whose rows have no line of their own."""
    if not path.is_file():  # a hub dataset's split: rows only
        return None
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if path.suffix.lower() == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        starts, next_start = [], 1
        for record in reader:
            if record:  # blank lines hold no row, as pandas reads them
                starts.append(next_start)
            next_start = reader.line_num + 1
        return starts[1:]
    if is_json_array(path, text):
        return None
    return [number for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def row_location(path: Path, row: int) -> str:
    """How errors point at a data row: "row 7 (line 9)"."""
    starts = data_row_start_lines(path)
    if starts is not None and row < len(starts):
        return f"row {row} (line {starts[row]})"
    return f"row {row}"


def line_location(path: Path, line: int) -> str:
    """The data row that spans file line `line`, for errors found by line (encoding, JSON syntax)."""
    starts = data_row_start_lines(path) or []
    row = sum(1 for start in starts if start <= line) - 1
    return f"row {row} (line {line})" if row >= 0 else f"line {line} (header)"


def first_problem(path: Path, problems: list[tuple[int, str]]) -> InputError:
    """One error for a file's (row, message) problems: the first, and how many other rows have one."""
    row, message = problems[0]
    others = f" ({len(problems) - 1} more rows have problems)" if len(problems) > 1 else ""
    return InputError(f"{path}, {row_location(path, row)}: {message}{others}")


# --- Reading and checking files ---------------------------------------------------------------------------------


def check_input_paths(paths_by_option: dict[str, str | None]) -> None:
    """Each given file (keyed by its option, e.g. `train_file`) exists and has a supported suffix."""
    for option, path in paths_by_option.items():
        if path is None:
            continue
        if Path(path).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InputError(f"{path}: --{option} must be a .csv, .json or .jsonl file")
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file (--{option})")


def check_file_is_readable(path: Path) -> None:
    """UTF-8 text, and for JSON files valid JSON, so that a broken row is named before datasets reads it."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        offset = err.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data[:offset].count(b"\n") + 1
        raise InputError(
            f"{path}, {line_location(path, line)}: not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}); "
            "save the file as UTF-8"
        ) from err
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    if path.suffix.lower() == ".csv":
        return
    if is_json_array(path, text):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON: {err.msg}") from err
        return
    rows = ((number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip())
    for row, (number, line) in enumerate(rows):
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}, row {row} (line {number}): not valid JSON: {err.msg}") from err


def load_table(path: Path, cache_dir: str | None, split: str = "train") -> Dataset:
    """One file as a Dataset; `split` only names it (datasets logs "Generating <split> split")."""
    check_file_is_readable(path)
    if path.suffix.lower() == ".csv":
        # Only empty cells are missing values: a tweet that reads "NA" or "null" stays text.
        builder, options = "csv", {"keep_default_na": False, "na_values": [""], "encoding": "utf-8-sig"}
    else:
        builder, options = "json", {}
    try:
        return load_dataset(builder, data_files={split: str(path)}, split=split, cache_dir=cache_dir, **options)
    except Exception as err:  # datasets wraps the parser's error; report its root cause
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise InputError(f"{path}: cannot be read as {builder.upper()}: {cause}") from err


def load_hub_table(hub: HubDataset, split: str, cache_dir: str | None) -> Dataset:
    """One split of a hub dataset; offline or missing, an InputError that says how to give files instead."""
    options = {"token": hub.token} if hub.token is not None else {}
    try:
        return load_dataset(hub.name, hub.config, split=split, cache_dir=cache_dir, **options)
    except Exception as err:
        raise InputError(f"{hub.name}/{split}: cannot load the hub dataset ({type(err).__name__}: {err}); offline, "
                         "pass the data as --train_file / --validation_file / --test_file") from err


def join_text_columns(dataset: Dataset, path: Path, text_column: str, delimiter: str) -> Dataset:
    """With `--text_column a,b`, the columns joined by `delimiter` into one column named `a,b` (as the transformers
    example joins its --text_column_names), which every later step reads as the text column."""
    names = text_column.split(",")
    if len(names) == 1:
        return dataset
    for name in names:  # each of the joined columns must exist
        check_columns(dataset, path, {"text_column": name})
    return dataset.map(
        lambda batch: {text_column: [delimiter.join(map(str, parts)) for parts in zip(*(batch[n] for n in names))]},
        batched=True, desc="Joining the text columns",
    )


def check_columns(dataset: Dataset, path: Path, columns: dict[str, str]) -> None:
    """`columns` maps option names (text_column) to the column names they ask for."""
    for option, column in columns.items():
        if column not in dataset.column_names:
            found = ", ".join(repr(name) for name in dataset.column_names)
            raise InputError(f"{path}: no column {column!r} (the file has {found}); set --{option}")


def check_texts(dataset: Dataset, path: Path, text_column: str) -> None:
    problems = []
    for row, text in enumerate(column_list(dataset, text_column)):
        if text is None:
            problems.append((row, f"no text in column {text_column!r}"))
        elif not isinstance(text, str):
            problems.append((row, f"column {text_column!r} holds {text!r}, not text"))
        elif not text.strip():
            problems.append((row, f"empty text in column {text_column!r}"))
    if problems:
        raise first_problem(path, problems)


def read_input_files(
    files: dict[str, Path],
    text_column: str,
    label_column: str,
    id_column: str | None,
    cache_dir: str | None,
    text_delimiter: str = " ",
    hub: HubDataset | None = None,
) -> dict[str, Dataset]:
    """Each file of `files` (by split: train, validation, test; with `hub`, that dataset's split, `files` only
    naming it) read and checked: readable, the text column or columns (joined; for train and validation the label
    column, for test the id column if one is named) present, no empty text. Labels are checked once their names
    are known (`label_ids`)."""
    datasets_by_split = {}
    for split, path in files.items():
        dataset = load_table(path, cache_dir, split) if hub is None else load_hub_table(hub, split, cache_dir)
        dataset = join_text_columns(dataset, path, text_column, text_delimiter)
        columns = {"text_column": text_column}
        if split != "test":
            columns["label_column"] = label_column
        elif id_column is not None:
            columns["id_column"] = id_column
        check_columns(dataset, path, columns)
        check_texts(dataset, path, text_column)
        datasets_by_split[split] = dataset
    return datasets_by_split


def first_rows(dataset: Dataset, limit: int | None) -> Dataset:
    """The first `limit` rows of `dataset` (all of them when `limit` is None)."""
    return dataset if limit is None else dataset.select(range(min(limit, len(dataset))))


def default_id_column(column_names: Sequence[str]) -> str | None:
    """The column that identifies a test row: `id`, else the unnamed index column, else none."""
    for column in ("id", UNNAMED_INDEX_COLUMN):
        if column in column_names:
            return column
    return None


# --- Labels ---------------------------------------------------------------------------------------------------


def label_key(value: Any) -> str | None:
    """A label cell as text: 2, 2.0 (pandas reads an int column with gaps as floats) and "2" all give "2"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def split_class_names(given: str | Sequence[str]) -> list[str]:
    """Class names as given on the command line (comma- or space-separated) or in a config file (a list)."""
    names = [part.strip() for name in ([given] if isinstance(given, str) else given) for part in str(name).split(",")]
    if len(names) < 2 or "" in names or len(set(names)) != len(names):
        raise ArgumentError(f"--class_names needs two or more distinct, non-empty names, got {given!r}")
    return names


def config_label_names(config: transformers.PretrainedConfig) -> list[str] | None:
    """The model config's class names in id order; None for the placeholders (LABEL_0, LABEL_1, ...) that a
    config without labels gets."""
    if not config.id2label:
        return None
    names = [config.id2label[index] for index in sorted(config.id2label)]
    return None if names == [f"LABEL_{index}" for index in range(len(names))] else names


def sorted_label_names(labels: list[Any]) -> list[str]:
    """The distinct labels of a column as class names, sorted (numerically when they are all integers)."""
    keys = {key for key in map(label_key, labels) if key}
    if all(key.lstrip("-").isdigit() for key in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def resolve_label_names(
    given: list[str] | None, config: transformers.PretrainedConfig, train_labels: list[Any] | None
) -> list[str]:
    """The class names in id order: `--class_names`, else the model config's own names, else the sorted distinct
    labels of the training file."""
    if given is not None:
        return given
    names = config_label_names(config)
    if names is not None:
        return names
    if train_labels is None:
        raise ArgumentError("the model has no label names of its own: give --class_names")
    return sorted_label_names(train_labels)


def label_ids(labels: list[Any], label_names: list[str], path: Path, label_column: str) -> list[int]:
    """Label ids for a column whose cells are label names or 0-based ids (a name wins if both could match)."""
    label2id = {name: index for index, name in enumerate(label_names)}
    ids, problems = [], []
    for row, value in enumerate(labels):
        key = label_key(value)
        if key in label2id:
            ids.append(label2id[key])
        elif key is not None and key.isdigit() and int(key) < len(label_names):
            ids.append(int(key))
        elif key is None or key == "":
            problems.append((row, f"no label in column {label_column!r}"))
        else:
            declared = ", ".join(label_names)
            problems.append(
                (row, f"label {value!r} is not one of the declared labels ({declared}) "
                      f"or their ids 0-{len(label_names) - 1}")
            )
    if problems:
        raise first_problem(path, problems)
    return ids
