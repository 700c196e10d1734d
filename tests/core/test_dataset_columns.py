"""Whole-column reads follow the dataset's row order, also through select/shuffle index mappings."""

import numpy as np
from datasets import Dataset

from qa_transfer.core.columns import arrow_columns, column_array, column_list, list_lengths, list_offsets


def test_columns_follow_an_index_mapping():
    dataset = Dataset.from_dict({
        "id": [f"q{i}" for i in range(6)],
        "n": list(range(6)),
        "offsets": [[[i, i + 1]] * i for i in range(6)],
    })
    view = dataset.shuffle(seed=3).select([4, 0, 2])  # an index mapping, not flattened
    expected = [row["id"] for row in view]
    assert column_list(view, "id") == expected
    assert column_array(view, "n").tolist() == [int(i[1:]) for i in expected]
    lengths = list_lengths(arrow_columns(view, ["offsets"])["offsets"])
    assert lengths.tolist() == [int(i[1:]) for i in expected]
    pairs, first = list_offsets(arrow_columns(view, ["offsets"])["offsets"])
    assert first.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
    for row, example_id in enumerate(expected):
        i = int(example_id[1:])
        assert pairs[first[row] : first[row + 1]].tolist() == [[i, i + 1]] * i
