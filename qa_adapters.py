"""Dataset adapters: each named QA dataset turned into flat SQuAD 2.0 records (see `qa_data.FLAT_FEATURES`).

`run_qa.py --dataset NAME`, `cross_eval.py` and `convert_qa.py` reach every dataset through
`load_named_split(name, split, data_dir, cache_dir)`, and a raw official file given with `--train_file` /
`--validation_file` through `load_named_file(name, path, cache_dir)`. An adapter loads from the hub when `data_dir`
is None (users with internet) and from the official files in `data_dir` otherwise.

The conversions themselves live in `qa_sources/` (one module per dataset). A conversion streams its records into
`Dataset.from_generator`, which writes Arrow under `<cache_dir>/qa_converted/`; the cache is keyed by the source
(each file's path, size and modification time, or the hub id and split), the conversion options and
CONVERSION_VERSION, so a second run reuses it without reading the source again. Each conversion's counts (kept,
dropped, repaired, and why) are saved beside it and logged.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import datasets
from datasets import Dataset, NamedSplit, load_dataset
from datasets.exceptions import DatasetGenerationError

from qa_data import (
    FLAT_FEATURES,
    QADataError,
    RecordStats,
    answer_counts,
    load_qa_file,
    read_raw_records,
    validate_records,
)
from qa_sources import mrqa, natural_questions, newsqa, quac, triviaqa
from qa_sources.common import ConversionStats, OfficialSource
from results_io import write_json_atomic

logger = logging.getLogger(__name__)

# Bump when any conversion's output changes, so that conversions cached by older code are not reused.
CONVERSION_VERSION = 1


@dataclass(frozen=True)
class DatasetAdapter:
    name: str
    description: str
    # load(split, data_dir, cache_dir) -> flat Dataset; split is "train", "validation" or "test"
    load: Callable[[str, str | None, str | None], Dataset]
    # how the dataset's official files are read; None for datasets whose files are already SQuAD-format
    source: OfficialSource | None = None


ADAPTERS: dict[str, DatasetAdapter] = {}


def register(adapter: DatasetAdapter) -> DatasetAdapter:
    ADAPTERS[adapter.name] = adapter
    return adapter


def get_adapter(name: str) -> DatasetAdapter:
    if name not in ADAPTERS:
        raise QADataError(f"unknown dataset {name!r}: choose one of {', '.join(sorted(ADAPTERS))}, or pass local files")
    return ADAPTERS[name]


def load_named_split(name: str, split: str, data_dir: str | None = None, cache_dir: str | None = None) -> Dataset:
    return get_adapter(name).load(split, data_dir, cache_dir)


def load_named_file(name: str, path: str, cache_dir: str | None = None, split: str | None = None) -> Dataset:
    """One local file of dataset `name`: converted (and cached) when it is in the dataset's official layout,
    read by the plain SQuAD-format loader otherwise. `split` picks the stories of one split from files that hold
    several (NewsQA's combined JSON); None keeps them all."""
    return convert_named_file(name, path, cache_dir, split)[0]


def convert_named_file(
    name: str, path: str, cache_dir: str | None = None, split: str | None = None
) -> tuple[Dataset, RecordStats]:
    """`load_named_file` plus the counts of what the conversion kept, repaired and dropped."""
    source = get_adapter(name).source
    if source is None or not source.is_official_file(path):
        records, stats = validate_records(read_raw_records(path), path)
        return Dataset.from_list(records, features=FLAT_FEATURES), stats

    def records(stats: ConversionStats) -> Iterator[dict]:
        return source.convert_file(path, split, stats)

    key = {"files": [_file_identity(p) for p in [path, *source.related_paths(path)]], "split": split}
    return cached_conversion(source, key, records, cache_dir, label=f"{path} ({name})")


def convert_named_split(
    name: str, split: str, data_dir: str | None = None, cache_dir: str | None = None
) -> tuple[Dataset, RecordStats]:
    """`load_named_split` plus the counts of what was kept, repaired and dropped."""
    adapter = get_adapter(name)
    if adapter.source is None:
        dataset = adapter.load(split, data_dir, cache_dir)
        return dataset, count_records(dataset)
    return convert_source_split(adapter.source, split, data_dir, cache_dir)


def count_records(dataset: Dataset) -> RecordStats:
    answerable = int((answer_counts(dataset) > 0).sum()) if len(dataset) else 0
    return RecordStats(questions=len(dataset), answerable=answerable, unanswerable=len(dataset) - answerable)


def find_split_files(source: OfficialSource, split: str, data_dir: str) -> list[str]:
    """The official files of `split` in `data_dir`: all matches of the first pattern that matches anything."""
    if not os.path.isdir(data_dir):
        raise QADataError(f"{data_dir}: --data_dir is not a folder")
    patterns = source.split_files[split]
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.join(data_dir, pattern)))
        if matches:
            return matches
    raise QADataError(f"{data_dir}: no {source.name} {split} file found (looked for {', '.join(patterns)})")


def convert_source_split(
    source: OfficialSource, split: str, data_dir: str | None, cache_dir: str | None
) -> tuple[Dataset, ConversionStats]:
    """One split of a converted dataset, from the official files in `data_dir`, or streamed from the hub."""
    if split not in source.split_files:
        raise QADataError(f"{source.name} has no {split} split (it has {', '.join(source.split_files)})")
    if data_dir is not None:
        paths = find_split_files(source, split, data_dir)

        def file_records(stats: ConversionStats) -> Iterator[dict]:
            for path in paths:
                yield from source.convert_file(path, split, stats)

        related = sorted({p for path in paths for p in source.related_paths(path)})
        key = {"files": [_file_identity(p) for p in paths + related], "split": split}
        return cached_conversion(source, key, file_records, cache_dir, label=f"{source.name}/{split} ({data_dir})")
    hub = source.hub
    if hub is None:
        raise QADataError(source.no_hub_help)
    label = f"{hub.repo_id}/{hub.config}/{split}"

    def hub_records(stats: ConversionStats) -> Iterator[dict]:
        try:
            # Streaming: the conversion reads rows as they arrive and never downloads the whole dataset.
            rows = load_dataset(hub.repo_id, hub.config, split=split, streaming=True)
        except Exception as err:  # noqa: BLE001 - any hub failure gets the same advice
            raise QADataError(
                f"{label}: cannot load the hub copy ({type(err).__name__}: {err}); offline, download the official "
                f"files and pass --data_dir DIR (looked for: {', '.join(source.split_files[split])})"
            ) from err
        return hub.convert_rows(rows, label, stats)

    key = {"hub": hub.repo_id, "config": hub.config, "split": split}
    return cached_conversion(source, key, hub_records, cache_dir, label=label)


def _file_identity(path: str) -> dict:
    if not os.path.exists(path):
        raise QADataError(f"{path}: file not found")
    status = os.stat(path)
    return {"path": os.path.realpath(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def conversion_fingerprint(source: OfficialSource, source_key: dict) -> str:
    key = {"dataset": source.name, "source": source_key, "options": source.options, "version": CONVERSION_VERSION}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:40]


def cached_conversion(
    source: OfficialSource,
    source_key: dict,
    make_records: Callable[[ConversionStats], Iterator[dict]],
    cache_dir: str | None,
    label: str,
) -> tuple[Dataset, ConversionStats]:
    """Run a conversion into the Arrow cache once per (source, options); later calls load the cached split."""
    fingerprint = conversion_fingerprint(source, source_key)
    root = os.path.join(cache_dir or datasets.config.HF_DATASETS_CACHE, "qa_converted")
    stats_path = os.path.join(root, "stats", f"{fingerprint}.json")
    stats = ConversionStats()
    converted = False

    def generate() -> Iterator[dict]:
        nonlocal converted
        converted = True
        count = 0
        for record in make_records(stats):
            count += 1
            yield record
        if count == 0:  # raised inside the generator, so that nothing is cached
            raise QADataError(f"{label}: no questions left after conversion ({stats.summary()})")

    try:
        dataset = Dataset.from_generator(
            generate, features=FLAT_FEATURES, cache_dir=root, fingerprint=fingerprint, split=NamedSplit("train")
        )
    except DatasetGenerationError as err:
        if isinstance(err.__cause__, QADataError):
            raise err.__cause__ from None
        raise
    if converted:
        write_json_atomic(stats_path, stats.to_json())
        logger.info("%s: converted (%s)", label, stats.summary())
    elif os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as handle:
            stats = ConversionStats.from_json(json.load(handle))
        logger.info("%s: reused the cached conversion (%s)", label, stats.summary())
    else:
        counts = count_records(dataset)
        stats = ConversionStats(counts.questions, counts.answerable, counts.unanswerable)
        stats.note("drops and repairs unknown: the cached conversion has no stats file")
    return dataset, stats


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


def _converting_adapter(source: OfficialSource, description: str) -> DatasetAdapter:
    def load(split: str, data_dir: str | None, cache_dir: str | None) -> Dataset:
        return convert_source_split(source, split, data_dir, cache_dir)[0]

    return DatasetAdapter(source.name, description, load, source)


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
register(
    _converting_adapter(
        triviaqa.SOURCE,
        "TriviaQA, Wikipedia evidence, first 800 tokens per document (hub mandarjoshi/trivia_qa rc.wikipedia, "
        "streamed, or qa/wikipedia-{train,dev}.json + evidence/wikipedia/ in --data_dir)",
    )
)
register(
    _converting_adapter(
        natural_questions.SOURCE,
        "Natural Questions, paragraph long answers as contexts (hub google-research-datasets/natural_questions, "
        "streamed, or train/ and dev/ nq-*.jsonl.gz, original or simplified, in --data_dir)",
    )
)
register(
    _converting_adapter(
        quac.SOURCE,
        "QuAC, each turn a standalone question (train_v0.2.json / val_v0.2.json in --data_dir; no hub copy)",
    )
)
register(
    _converting_adapter(
        newsqa.SOURCE,
        "NewsQA (split_data/{train,dev,test}.csv or combined-newsqa-data-v1.json in --data_dir; no hub copy)",
    )
)
register(
    _converting_adapter(
        mrqa.SOURCE,
        "MRQA 2019 shared-task files (train/ and dev/ <Dataset>.jsonl.gz in --data_dir)",
    )
)
