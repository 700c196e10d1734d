"""What the QA scripts share about a run: the record run_qa.py writes beside a fine-tuned model (qa_run_info.json),
which cross_eval.py reads to label each model and fine_tune_all.py to skip finished ones, and the paper's datasets.

Standard library only (and results_io), so that fine_tune_all.py can use it without loading torch or transformers.
"""

from __future__ import annotations

import os

from qa_transfer.core.results_io import read_json

# Written next to the model by `run_qa.py --do_train`.
RUN_INFO_FILE = "qa_run_info.json"
# The five datasets of Sen & Saffari (2020), in the paper's order: fine_tune_all.py's rows, cross_eval.py's columns.
PAPER_DATASETS = ["squad_v2", "trivia_qa", "natural_questions", "quac", "newsqa"]


def describe_source(dataset_name: str | None, data_file: str | None) -> str:
    """A short label for where a split came from, recorded in the run's metadata."""
    if data_file is not None:
        return os.path.abspath(data_file)
    return str(dataset_name)


def recorded_version_2_with_negative(model_name_or_path: str) -> bool | None:
    """What a model directory's qa_run_info.json records about "no answer"; None without a (readable) record
    (a hub id, a base encoder)."""
    path = os.path.join(model_name_or_path, RUN_INFO_FILE)
    if not os.path.isfile(path):
        return None
    try:
        return read_json(path).get("version_2_with_negative")
    except ValueError:
        return None


def default_version_2_with_negative(recorded: bool | None, data_has_unanswerable: bool) -> bool:
    """"No answer" is allowed when the model was trained with it (it keeps abstaining on fully answerable sets, and
    on prediction files, which cannot tell) or when the data has unanswerable questions."""
    return bool(recorded) or data_has_unanswerable
