"""Whole columns of a `datasets.Dataset`, read in one go.

`dataset["name"]` is a lazy `Column` in datasets 5: iterating it, or indexing it row by row, decodes one row
from Arrow at a time (about 1 ms a row). Hot paths read each column they need once, whole, through these
helpers: Arrow arrays for numbers and nested lists, Python lists for text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset


def arrow_columns(dataset: Dataset, names: list[str]) -> dict[str, pa.Array]:
    """Columns as single Arrow arrays, in dataset order (a `select`/`shuffle` index mapping is applied)."""
    table = dataset.select_columns(names).with_format("arrow")[:]
    return {name: table[name].combine_chunks() for name in names}


def arrow_column(dataset: Dataset, name: str) -> pa.Array:
    """One column as a single Arrow array, in dataset order."""
    return arrow_columns(dataset, [name])[name]


def column_list(dataset: Dataset, name: str) -> list[Any]:
    """One column as a Python list."""
    return arrow_column(dataset, name).to_pylist()


def to_numpy(column: pa.Array, dtype: Any = None) -> np.ndarray:
    """An Arrow array of scalars as a numpy array."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def column_array(dataset: Dataset, name: str, dtype: Any = None) -> np.ndarray:
    """One column of scalars as a numpy array."""
    return to_numpy(arrow_column(dataset, name), dtype)


def list_lengths(column: pa.Array) -> np.ndarray:
    """The length of each list in a list column (0 for a missing list)."""
    return to_numpy(pc.list_value_length(column).fill_null(0), np.int64)


def list_offsets(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A column of lists of pairs (token offsets) as one (n_pairs, 2) int64 array, and each row's first pair."""
    pairs = to_numpy(column.flatten().flatten(), np.int64).reshape(-1, 2)
    return pairs, np.concatenate([[0], np.cumsum(list_lengths(column))]).astype(np.int64)
