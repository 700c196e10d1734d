"""predict.py's input and output: records read from JSON Lines, a JSON array or CSV (a file, or `-`: standard
input), each with where it is for the error that names it, and JSON Lines written whole (a file, or `-`: standard
output), so that a failed run leaves no half-written output."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from qa_transfer.core.errors import PredictionInputError
from qa_transfer.core.results_io import write_text_atomic

STANDARD_STREAM = "-"
FORMATS = {".jsonl": "jsonl", ".json": "json", ".csv": "csv"}


def read_input_text(path: str) -> tuple[str, str]:
    """(the name errors use, the text) of a file or of standard input."""
    if path == STANDARD_STREAM:
        return "<stdin>", sys.stdin.read()
    if not Path(path).is_file():
        raise PredictionInputError(f"{path}: no such file")
    try:
        return path, Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise PredictionInputError(
            f"{path}: not UTF-8 text (byte offset {err.start}); save the file as UTF-8") from None


def input_format(path: str, text: str) -> str:
    """jsonl, json or csv: by the file's suffix; standard input by its first character (`{`, `[`, else CSV)."""
    if path != STANDARD_STREAM:
        suffix = Path(path).suffix.lower()
        if suffix not in FORMATS:
            raise PredictionInputError(f"{path}: the input must be a .jsonl, .json or .csv file")
        # A .json file that is not one array is read as JSON Lines, as run_classification.py reads it.
        return "jsonl" if suffix == ".json" and not text.lstrip().startswith("[") else FORMATS[suffix]
    first = text.lstrip()[:1]
    return {"{": "jsonl", "[": "json"}.get(first, "csv")


def read_records(path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every record of the input as (where, record): "file: line 3" for JSON Lines and CSV (the line the record
    starts on), "file: record 3" for a JSON array; a PredictionInputError naming the first bad one."""
    name, text = read_input_text(path)
    kind = input_format(path, text)
    if kind == "jsonl":
        records = []
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    records.append((f"{name}: line {number}", json.loads(line)))
                except json.JSONDecodeError as err:
                    raise PredictionInputError(f"{name}: line {number}: not valid JSON ({err.msg})") from None
    elif kind == "json":
        try:
            array = json.loads(text)
        except json.JSONDecodeError as err:
            raise PredictionInputError(f"{name}: not valid JSON at line {err.lineno} ({err.msg})") from None
        if not isinstance(array, list):
            raise PredictionInputError(f"{name}: a .json input must be an array of records, or JSON Lines")
        records = [(f"{name}: record {index}", record) for index, record in enumerate(array)]
    else:
        records = csv_records(name, text)
    for where, record in records:
        if not isinstance(record, dict):
            raise PredictionInputError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    if not records:
        raise PredictionInputError(f"{name}: no records")
    return records


def csv_records(name: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    """A CSV file's rows as records keyed by its header; every cell stays text (a tweet "123" is not a number)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        records, start = [], reader.line_num + 1
        for row in reader:
            if row:  # blank lines hold no record
                where = f"{name}: line {start}"
                if len(row) != len(header):
                    raise PredictionInputError(f"{where}: {len(row)} fields, but the header has {len(header)}")
                records.append((where, dict(zip(header, row))))
            start = reader.line_num + 1
    except csv.Error as err:
        raise PredictionInputError(f"{name}: line {reader.line_num}: not valid CSV ({err})") from None
    return records


def require_fields(records: list[tuple[str, dict[str, Any]]], names: tuple[str, ...], kind: str) -> None:
    """Each record has every field of `names` (a model of `kind` needs them)."""
    for where, record in records:
        missing = [name for name in names if name not in record]
        if missing:
            raise PredictionInputError(f"{where}: missing field {missing[0]!r} (a {kind} model needs "
                                       f"{' and '.join(repr(name) for name in names)})")


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_output(path: str, text: str) -> None:
    """The whole output at once: to standard output, or atomically to a file (its folder created)."""
    if path == STANDARD_STREAM:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
