"""Dataset adapters: each named QA dataset turned into flat SQuAD 2.0 records (see `qa.data.FLAT_FEATURES`).

`run_qa.py` and `cross_eval.py` load each split through `load_qa_split` (a local file, or a named dataset, validated);
`convert_qa.py` and `load_qa_split` reach every dataset through `load_named_split(name, split, data_dir, cache_dir)`,
and a raw official file given with `--train_file` / `--validation_file` through `load_named_file(name, path,
cache_dir)`. An adapter loads from the official files in
`data_dir` when given; otherwise (users with internet) from the hub, or, for datasets without a loadable hub copy
(QuAC, MRQA's NewsQA), by downloading the official files from their public location with `datasets`' download
manager (cached; an interrupted transfer is retried) and converting them like files in `data_dir`.

Every dataset is converted by the rules of the paper's converter unless its name says otherwise; `conversion_name`
gives the name of the conversion behind a dataset or file, which run_qa.py and cross_eval.py record.

The conversions themselves live in `sources/` (one module per dataset). A conversion streams its records into
`Dataset.from_generator`, which writes Arrow under `<cache_dir>/qa_converted/`; the cache is keyed by the source
(each file's path, size and modification time, or the hub id and split), the conversion options and
CONVERSION_VERSION, so a second run reuses it without reading the source again. Each conversion's counts (kept,
dropped, repaired, and why) are saved beside it and logged.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import datasets
from datasets import Dataset, NamedSplit, load_dataset
from datasets.exceptions import DatasetGenerationError

from qa_transfer.core.errors import QADataError, UsageError
from qa_transfer.core.network import require_hub
from qa_transfer.core.results_io import write_json_atomic
from qa_transfer.qa.data import (
    FLAT_FEATURES,
    SPLIT_ALIASES,
    RecordStats,
    answer_counts,
    load_qa_file,
    read_raw_records,
    require_file,
    validate_dataset,
    validate_records,
)
from qa_transfer.sources import mrqa, natural_questions, newsqa, quac, triviaqa
from qa_transfer.sources.common import ConversionStats, OfficialSource
from qa_transfer.sources.downloads import download_split_files

logger = logging.getLogger("qa_transfer.sources.adapters")

# Bump when any conversion's output changes, so that conversions cached by older code are not reused.
CONVERSION_VERSION = 3
# The conversion name of data used as published (SQuAD), and of a SQuAD-format file whose making is not known here.
AS_PUBLISHED = "as_published"
SQUAD_FORMAT_FILE = "squad_format_file"
# Rows a seeded hub stream holds to shuffle (after shuffling the order of its files): datasets' default.
STREAM_SHUFFLE_BUFFER = 1000


@dataclass(frozen=True)
class StreamLimit:
    """Stop a conversion streamed from the hub once `questions` records have been converted. With a `seed`, the
    stream is shuffled first (the order of its Parquet files, then a buffer of rows), so a limited run sees a
    seeded sample rather than the first files; with None it keeps the hub's order. Files in --data_dir are
    always converted whole (and cached), then subsampled."""

    questions: int
    seed: int | None = None

    @classmethod
    def for_subset(cls, max_questions: int | None, subset_strategy: str, seed: int) -> StreamLimit | None:
        """The limit for a run that uses `max_questions` questions picked by --subset_strategy ("first" keeps
        the hub's order, "random" shuffles with `seed`); None when all are wanted."""
        if max_questions is None:
            return None
        return cls(max_questions, seed if subset_strategy == "random" else None)


@dataclass(frozen=True)
class DatasetAdapter:
    name: str
    # load(split, data_dir, cache_dir, limit) -> flat Dataset; split is "train", "validation" or "test"; `limit`
    # stops a streamed conversion early (SQuAD's hub copies are small and downloaded whole)
    load: Callable[[str, str | None, str | None, StreamLimit | None], Dataset]
    # how the dataset's official files are read; None for datasets whose files are already SQuAD-format
    source: OfficialSource | None = None
    # the hub copy as the transformers examples name it (--dataset_name ID --dataset_config_name CONFIG)
    hub_id: str | None = None
    hub_config: str | None = None


ADAPTERS: dict[str, DatasetAdapter] = {}


def register(adapter: DatasetAdapter) -> DatasetAdapter:
    ADAPTERS[adapter.name] = adapter
    return adapter


def get_adapter(name: str) -> DatasetAdapter:
    if name not in ADAPTERS:
        raise QADataError(f"unknown dataset {name!r}: choose one of {', '.join(sorted(ADAPTERS))}, or pass local files")
    return ADAPTERS[name]


def adapter_name(name: str | None, config: str | None = None) -> str | None:
    """The adapter that a dataset name means: its own name, or its hub id with no config or the adapter's own
    (`rajpurkar/squad_v2` is squad_v2); None for any other name, which is read as a SQuAD-format hub dataset."""
    if name is None:
        return None
    for adapter in ADAPTERS.values():
        if name in (adapter.name, adapter.hub_id) and config in (None, adapter.hub_config):
            return adapter.name
    return None


def load_named_split(
    name: str, split: str, data_dir: str | None = None, cache_dir: str | None = None, limit: StreamLimit | None = None
) -> Dataset:
    return get_adapter(name).load(split, data_dir, cache_dir, limit)


def load_named_file(name: str, path: str, cache_dir: str | None = None, split: str | None = None) -> Dataset:
    """One local file of dataset `name`: converted (and cached) when it is in the dataset's official layout,
    read by the plain SQuAD-format loader otherwise. `split` picks the stories of one split from files that hold
    several (NewsQA's combined JSON); None keeps them all."""
    return convert_named_file(name, path, cache_dir, split)[0]


def load_qa_split(
    split: str,
    dataset_name: str | None = None,
    data_file: str | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    require_answers: bool = True,
    repair_offsets: bool = False,
    stream_limit: StreamLimit | None = None,
    dataset_config: str | None = None,
    token: str | None = None,
) -> Dataset:
    """One split as validated flat records, from a local file if given, else from the named dataset's adapter, else
    (a name no adapter has) from the hub dataset of that id and `dataset_config`, read as SQuAD-format;
    `stream_limit` stops a conversion streamed from the hub once it has that many questions."""
    if data_file is not None:
        # A named dataset's raw official file (QuAC's val_v0.2.json looks SQuAD-like but is not) is converted by its
        # adapter; anything else goes to the plain loader.
        if dataset_name in ADAPTERS and file_source(dataset_name, data_file) is not None:
            dataset = load_named_file(dataset_name, data_file, cache_dir=cache_dir, split=SPLIT_ALIASES[split])
            return validate_dataset(dataset, data_file, require_answers, repair_offsets)
        return load_qa_file(data_file, require_answers=require_answers, repair_offsets=repair_offsets)
    if dataset_name is None:
        raise QADataError(f"no source for the {split} split: pass --dataset NAME or --{split}_file FILE")
    if dataset_name not in ADAPTERS:
        dataset = load_squad_format_hub(dataset_name, dataset_config, SPLIT_ALIASES[split], cache_dir, token,
                                        unknown_name=True)
        return validate_dataset(dataset, f"{dataset_name}/{split}", require_answers, repair_offsets)
    dataset = load_named_split(dataset_name, SPLIT_ALIASES[split], data_dir=data_dir, cache_dir=cache_dir,
                               limit=stream_limit)
    return validate_dataset(dataset, f"{dataset_name}/{split}", require_answers, repair_offsets)


def convert_named_file(
    name: str, path: str, cache_dir: str | None = None, split: str | None = None
) -> tuple[Dataset, RecordStats]:
    """`load_named_file` plus the counts of what the conversion kept, repaired and dropped."""
    source = file_source(name, path)
    if source is None:
        records, stats = validate_records(read_raw_records(path), path)
        return Dataset.from_list(records, features=FLAT_FEATURES), stats
    return convert_files(source, [path], split, cache_dir, label=f"{path} ({name})")


def file_source(name: str, path: str) -> OfficialSource | None:
    """How dataset `name`'s conversion reads the file `path`; None when it is a SQuAD-format file (or `name` has no
    conversion)."""
    source = get_adapter(name).source
    return source.source_for_file(path) if source is not None else None


def conversion_name(name: str | None, data_file: str | None = None) -> str:
    """The name of the conversion that produces dataset `name` (or its file `data_file`): the paper's rules
    (`sources.common.PAPER_CONVERSION`) unless an alternative was asked for by name or by the file's layout."""
    if data_file is not None:
        source = file_source(name, data_file) if name in ADAPTERS else None
        return source.conversion if source is not None else SQUAD_FORMAT_FILE
    if name not in ADAPTERS:  # a SQuAD-format hub dataset, used as published
        return AS_PUBLISHED
    source = get_adapter(str(name)).source
    return source.conversion if source is not None else AS_PUBLISHED


def convert_named_split(
    name: str, split: str, data_dir: str | None = None, cache_dir: str | None = None
) -> tuple[Dataset, RecordStats]:
    """`load_named_split` plus the counts of what was kept, repaired and dropped."""
    adapter = get_adapter(name)
    if adapter.source is None:
        dataset = adapter.load(split, data_dir, cache_dir, None)
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
    source: OfficialSource, split: str, data_dir: str | None, cache_dir: str | None, limit: StreamLimit | None = None
) -> tuple[Dataset, ConversionStats]:
    """One split of a converted dataset, from the official files in `data_dir`, else downloaded from the files'
    public location, else streamed from the hub (only as far as `limit` needs, if given)."""
    if split not in source.split_files:
        raise QADataError(f"{source.name} has no {split} split (it has {', '.join(source.split_files)})")
    if data_dir is not None:
        paths = find_split_files(source, split, data_dir)
        return convert_files(source, paths, split, cache_dir, label=f"{source.name}/{split} ({data_dir})")
    if source.remote is not None:
        paths = download_split_files(source.remote, split, cache_dir, source.no_hub_help)
        return convert_files(source, paths, split, cache_dir, label=f"{source.name}/{split} (downloaded)")
    hub = source.hub
    if hub is None:
        raise QADataError(source.no_hub_help)
    label = f"{hub.repo_id}/{hub.config}/{split}"

    def hub_records(stats: ConversionStats) -> Iterator[dict]:
        require_hub(f"the dataset {hub.repo_id}")
        try:
            # Streaming: the conversion reads rows as they arrive and never downloads the whole dataset.
            columns = {"columns": list(hub.columns)} if hub.columns else {}
            rows = load_dataset(hub.repo_id, hub.config, split=split, streaming=True, **columns)
            if limit is not None and limit.seed is not None:
                rows = rows.shuffle(seed=limit.seed, buffer_size=STREAM_SHUFFLE_BUFFER)
        except Exception as err:
            raise QADataError(
                f"{label}: cannot load the hub copy ({type(err).__name__}: {err}); offline, download the official "
                f"files and pass --data_dir DIR (looked for: {', '.join(source.split_files[split])}), or the file "
                f"itself (--train_file / --validation_file)"
            ) from err
        records = hub.convert_rows(_counted_rows(rows, stats), label, stats)
        # islice stops pulling rows, and so the download, once the last wanted record is out.
        return records if limit is None else itertools.islice(records, limit.questions)

    key = {"hub": hub.repo_id, "config": hub.config, "split": split}
    if limit is not None:
        key.update(questions=limit.questions, seed=limit.seed)
        order = f"stream shuffled with seed {limit.seed}" if limit.seed is not None else "in the hub's order"
        label += f" ({limit.questions} questions, {order})"
    return cached_conversion(source, key, hub_records, cache_dir, label=label, split=split)


def convert_files(
    source: OfficialSource, paths: list[str], split: str | None, cache_dir: str | None, label: str
) -> tuple[Dataset, ConversionStats]:
    """The records of `split` (None: every split the files hold) in official files `paths`, converted once and
    cached under a key made of the files' identities."""
    def file_records(stats: ConversionStats) -> Iterator[dict]:
        for path in paths:
            yield from source.convert_file(path, split, stats)

    related = sorted({p for path in paths for p in source.related_paths(path)})
    key = {"files": [_file_identity(p) for p in paths + related], "split": split}
    return cached_conversion(source, key, file_records, cache_dir, label=label, split=split or "train")


def _counted_rows(rows: Iterable[dict], stats: ConversionStats) -> Iterator[dict]:
    for row in rows:
        stats.note("hub rows read")
        yield row


def _file_identity(path: str) -> dict:
    require_file(path)
    status = os.stat(path)
    return {"path": os.path.realpath(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def conversion_fingerprint(source: OfficialSource, source_key: dict) -> str:
    key = {
        "dataset": source.name,
        "source": source_key,
        "options": source.options,
        "conversion": source.conversion,
        "version": CONVERSION_VERSION,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:40]


def cached_conversion(
    source: OfficialSource,
    source_key: dict,
    make_records: Callable[[ConversionStats], Iterator[dict]],
    cache_dir: str | None,
    label: str,
    split: str = "train",
) -> tuple[Dataset, ConversionStats]:
    """Run a conversion into the Arrow cache once per (source, options); later calls load the cached split.
    `split` only names it (datasets logs "Generating <split> split")."""
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
            generate, features=FLAT_FEATURES, cache_dir=root, fingerprint=fingerprint, split=NamedSplit(split)
        )
    except DatasetGenerationError as err:
        if isinstance(err.__cause__, UsageError):  # bad data, or no network to stream it
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


def load_squad_format_hub(repo_id: str, config: str | None, split: str, cache_dir: str | None,
                          token: str | None = None, offline_help: str = "", unknown_name: bool = False) -> Dataset:
    """One split of a hub dataset in SQuAD's layout (id, title, context, question, answers; a missing title is
    empty) as flat records; a QADataError, with `offline_help`, when it cannot be loaded or has another layout."""
    options = {"token": token} if token is not None else {}
    require_hub(f"the dataset {repo_id}")
    try:
        dataset = load_dataset(repo_id, config, split=split, cache_dir=cache_dir, **options)
    except Exception as err:
        if unknown_name:  # most likely a misspelt name rather than a hub dataset
            raise QADataError(f"unknown dataset {repo_id!r}: not one of {', '.join(sorted(ADAPTERS))}, and no hub "
                              f"dataset of that id loads ({type(err).__name__}: {err})") from err
        raise QADataError(f"{repo_id}/{split}: cannot load the hub copy ({type(err).__name__}: {err}); "
                          f"{offline_help}") from err
    missing = [name for name in FLAT_FEATURES if name not in dataset.column_names and name != "title"]
    if missing:
        raise QADataError(f"{repo_id}/{split}: not a SQuAD-format dataset (no column {', '.join(missing)}; it has "
                          f"{', '.join(dataset.column_names)})")
    if "title" not in dataset.column_names:
        dataset = dataset.add_column("title", [""] * len(dataset))
    return dataset.select_columns(list(FLAT_FEATURES)).cast(FLAT_FEATURES)


def _squad_adapter(name: str, hub_id: str, hub_config: str, local_names: dict[str, list[str]]) -> DatasetAdapter:
    def load(split: str, data_dir: str | None, cache_dir: str | None, limit: StreamLimit | None) -> Dataset:
        if data_dir is None:
            return load_squad_format_hub(
                hub_id, None, split, cache_dir,
                offline_help=f"offline, pass --data_dir DIR (holding {' or '.join(local_names[split])}, optionally "
                             f".gz), or the file itself (--train_file / --validation_file)",
            )
        for candidate in local_names[split]:
            for suffix in ("", ".gz"):
                path = os.path.join(data_dir, candidate + suffix)
                if os.path.exists(path):
                    return load_qa_file(path)
        raise QADataError(
            f"{data_dir}: no {split} file found (looked for {', '.join(local_names[split])}, optionally .gz)")

    return DatasetAdapter(name, load, hub_id=hub_id, hub_config=hub_config)


def _converting_adapter(source: OfficialSource) -> DatasetAdapter:
    def load(split: str, data_dir: str | None, cache_dir: str | None, limit: StreamLimit | None) -> Dataset:
        return convert_source_split(source, split, data_dir, cache_dir, limit)[0]

    hub = source.hub
    return DatasetAdapter(source.name, load, source, hub.repo_id if hub else None, hub.config if hub else None)


# SQuAD 2.0: hub rajpurkar/squad_v2, or train-v2.0.json / dev-v2.0.json in --data_dir.
register(_squad_adapter(
    "squad_v2", "rajpurkar/squad_v2", "squad_v2", {"train": ["train-v2.0.json"], "validation": ["dev-v2.0.json"]}
))
# SQuAD 1.1: hub rajpurkar/squad, or train-v1.1.json / dev-v1.1.json in --data_dir.
register(_squad_adapter(
    "squad", "rajpurkar/squad", "plain_text", {"train": ["train-v1.1.json"], "validation": ["dev-v1.1.json"]}
))
# TriviaQA, Wikipedia evidence, first 800 NLTK tokens per document (hub mandarjoshi/trivia_qa rc.wikipedia, streamed,
# or qa/wikipedia-{train,dev}.json + evidence/wikipedia/ in --data_dir).
register(_converting_adapter(triviaqa.SOURCE))
# Natural Questions, paragraph long answers rendered from the HTML as contexts (hub
# google-research-datasets/natural_questions, streamed, or train/ and dev/ nq-*.jsonl.gz in --data_dir).
register(_converting_adapter(natural_questions.SOURCE))
# QuAC, each turn a standalone question, the paper's conversion (train_v0.2.json / val_v0.2.json in --data_dir, else
# downloaded from QuAC's public location).
register(_converting_adapter(quac.SOURCE))
# NewsQA, the paper's conversion of Maluuba's split_data/{train,dev,test}.csv in --data_dir (not downloadable: the
# error gives Maluuba's steps); MRQA files given as files are read as newsqa_mrqa.
register(_converting_adapter(newsqa.SOURCE))
# NewsQA from Maluuba's combined-newsqa-data-v1.json in --data_dir, by consensus answers (not the paper's data).
register(_converting_adapter(newsqa.COMBINED_JSON_SOURCE))
# NewsQA as released by MRQA 2019, answerable questions only (train/ and dev/ NewsQA.jsonl.gz in --data_dir, else
# downloaded from MRQA's public location; not the paper's data).
register(_converting_adapter(newsqa.MRQA_SOURCE))
# MRQA 2019 shared-task files, with or without a header line (train/ and dev/ <Dataset>.jsonl.gz in --data_dir).
register(_converting_adapter(mrqa.SOURCE))
