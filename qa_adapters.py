"""Dataset adapters: each named QA dataset turned into flat SQuAD 2.0 records (see `qa_data.FLAT_FEATURES`).

`run_qa.py --dataset NAME`, `cross_eval.py` and `convert_qa.py` reach every dataset through
`load_named_split(name, split, data_dir, cache_dir)`. An adapter loads from the hub when `data_dir` is None
(users with internet) and from the official files in `data_dir` otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from datasets import Dataset, load_dataset

from qa_data import FLAT_FEATURES, QADataError, load_qa_file


@dataclass(frozen=True)
class DatasetAdapter:
    name: str
    description: str
    # load(split, data_dir, cache_dir) -> flat Dataset; split is "train" or "validation"
    load: Callable[[str, str | None, str | None], Dataset]


ADAPTERS: dict[str, DatasetAdapter] = {}


def register(adapter: DatasetAdapter) -> DatasetAdapter:
    ADAPTERS[adapter.name] = adapter
    return adapter


def load_named_split(name: str, split: str, data_dir: str | None = None, cache_dir: str | None = None) -> Dataset:
    if name not in ADAPTERS:
        raise QADataError(f"unknown dataset {name!r}: choose one of {', '.join(sorted(ADAPTERS))}, or pass local files")
    return ADAPTERS[name].load(split, data_dir, cache_dir)


def _squad_loader(hub_id: str, local_names: dict[str, list[str]]) -> Callable[[str, str | None, str | None], Dataset]:
    def load(split: str, data_dir: str | None, cache_dir: str | None) -> Dataset:
        if data_dir is None:
            dataset = load_dataset(hub_id, split=split, cache_dir=cache_dir)
            return dataset.cast(FLAT_FEATURES)
        for candidate in local_names[split]:
            for suffix in ("", ".gz"):
                path = os.path.join(data_dir, candidate + suffix)
                if os.path.exists(path):
                    return load_qa_file(path)
        raise QADataError(f"{data_dir}: no {split} file found (looked for {', '.join(local_names[split])}, optionally .gz)")

    return load


register(
    DatasetAdapter(
        "squad_v2",
        "SQuAD 2.0 (hub rajpurkar/squad_v2, or train-v2.0.json / dev-v2.0.json in --data_dir)",
        _squad_loader("rajpurkar/squad_v2", {"train": ["train-v2.0.json"], "validation": ["dev-v2.0.json"]}),
    )
)
register(
    DatasetAdapter(
        "squad",
        "SQuAD 1.1 (hub rajpurkar/squad, or train-v1.1.json / dev-v1.1.json in --data_dir)",
        _squad_loader("rajpurkar/squad", {"train": ["train-v1.1.json"], "validation": ["dev-v1.1.json"]}),
    )
)
