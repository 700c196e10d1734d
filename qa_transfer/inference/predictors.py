"""Use a fine-tuned model outside the scripts: answer questions with a `run_qa.py` model, label tweets with a
`run_classification.py` model, from Python or through predict.py.

    from qa_transfer.inference import load_predictor
    reader = load_predictor("out/qa_quickstart")
    reader.answer("Who wrote it?", "It was written by Ada.")   # QAAnswer(text='Ada', start=18, end=21, ...)

Both run the scripts' own code on the settings the model was trained with, so they give what the scripts give:
QA windows through `qa.windows.window_split`, the Trainer's predict step and `utils_qa.evaluate_qa` (the
post-processing, the no-answer rule and threshold of `run_qa.py --do_predict`); tweets through
`classification.features.preprocess_splits` (the cleaning and lemmatizing the model was trained with) and the Trainer.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    TrainingArguments,
)

from qa_transfer.classification.features import classification_collator, preprocess_splits
from qa_transfer.classification.metrics import probabilities_of
from qa_transfer.core.arguments import has_accelerator
from qa_transfer.core.errors import InputError, ModelKindError, ModelPathError, UsageError
from qa_transfer.core.packaged_models import check_model_location
from qa_transfer.core.precision import cpu_bf16_instructions, cpu_bf16_request, keep_head_in_fp32
from qa_transfer.core.results_io import read_json
from qa_transfer.core.scripts import RUN_ARGUMENTS_FILE
from qa_transfer.core.trainer import BaseTrainer
from qa_transfer.qa.arguments import QAEvalArguments
from qa_transfer.qa.data import FLAT_FEATURES, RecordStats, check_record
from qa_transfer.qa.run_info import RUN_INFO_FILE, default_version_2_with_negative, recorded_version_2_with_negative
from qa_transfer.qa.training import qa_trainer
from qa_transfer.qa.windows import window_split
from utils_qa import evaluate_qa

QUESTION_ANSWERING = "question-answering"
TEXT_CLASSIFICATION = "text-classification"
# run_classification.py's own defaults, for a classifier saved without its run_arguments.json.
CLASSIFIER_DEFAULTS = {"text_column": "tweet", "text_column_delimiter": " ", "clean_text": True, "lemmatize": False,
                       "max_seq_length": 128, "pad_to_max_length": False}


def model_kind(model_dir: str | Path) -> str:
    """QUESTION_ANSWERING or TEXT_CLASSIFICATION, from the folder's own record: run_qa.py's qa_run_info.json, else
    the architecture in its config.json (`...ForQuestionAnswering`, `...ForSequenceClassification`)."""
    folder = model_folder(model_dir)
    if (folder / RUN_INFO_FILE).is_file():
        return QUESTION_ANSWERING
    architectures = read_json(folder / "config.json").get("architectures") or []
    if any(name.endswith("ForQuestionAnswering") for name in architectures):
        return QUESTION_ANSWERING
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        return TEXT_CLASSIFICATION
    raise ModelKindError(
        f"{model_dir}: neither a question-answering nor a text-classification model (config.json architectures: "
        f"{architectures or 'none'}); pass a folder that run_qa.py or run_classification.py trained"
    )


def model_folder(model_dir: str | Path) -> Path:
    """The model folder as a Path; a ModelPathError unless it is a local folder with a config.json."""
    location = check_model_location(str(model_dir))
    if not Path(location).is_dir():
        raise ModelPathError(f"{model_dir}: no such model folder; pass the folder a fine-tuned model was saved to")
    return Path(location)


def recorded_arguments(folder: Path, group: str) -> dict[str, Any]:
    """One argument group (`DataTrainingArguments`, ...) from the folder's run_arguments.json; {} without one."""
    path = folder / RUN_ARGUMENTS_FILE
    return read_json(path).get(group, {}) if path.is_file() else {}


def prediction_arguments(model_dir: Path, batch_size: int, bf16: bool) -> TrainingArguments:
    """The Trainer's arguments for prediction only: the batch size, and bf16 as the scripts' --bf16 means it (CPU
    autocast on a CPU with bf16 instructions; an ArgumentError on one without). The model folder is the output
    folder, where nothing is written."""
    accelerator = has_accelerator()
    use_cpu = cpu_bf16_request(argparse.Namespace(bf16=bf16), accelerator, cpu_bf16_instructions())
    return TrainingArguments(output_dir=str(model_dir), per_device_eval_batch_size=batch_size, bf16=bf16,
                             use_cpu=use_cpu, report_to="none", disable_tqdm=True, dataloader_pin_memory=accelerator)


@dataclass
class QAAnswer:
    """One question's answer: `text` is `context[start:end]`; an abstention (no answer) has text "" and no
    offsets. `score`: the answer's probability among the n-best answers (the no-answer entry included), the
    abstention's own when abstaining. `null_odds`: no-answer score - best span score (None for a model that
    never abstains, or when no span fits); above the threshold, the model abstains."""

    text: str
    start: int | None
    end: int | None
    score: float | None
    null_odds: float | None
    abstained: bool


class QAReader:
    """A fine-tuned QA model with the windowing and answer settings it was trained with (its qa_run_info.json,
    else run_arguments.json, else run_qa.py's defaults); keyword overrides of `from_pretrained` change them."""

    def __init__(self, model: Any, tokenizer: PreTrainedTokenizerBase, settings: QAEvalArguments,
                 version_2_with_negative: bool, training_args: TrainingArguments):
        self.settings = settings
        self.version_2_with_negative = version_2_with_negative
        self.tokenizer = tokenizer
        self.windows = settings.window_config(tokenizer)
        self.training_args = training_args
        keep_head_in_fp32(model, training_args)
        self.trainer = qa_trainer(model, tokenizer, training_args, settings.pad_to_max_length)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, batch_size: int = 8, bf16: bool = False,
                        **overrides: Any) -> QAReader:
        """`overrides`: run_qa.py's windowing and answer options (max_seq_length, doc_stride, max_query_length,
        n_best_size, max_answer_length, null_score_diff_threshold, version_2_with_negative)."""
        folder = model_folder(model_dir)
        recorded = {}
        if (folder / RUN_INFO_FILE).is_file():
            recorded = read_json(folder / RUN_INFO_FILE).get("data_args", {})
        recorded = recorded or recorded_arguments(folder, "DataTrainingArguments")
        names = {field.name for field in dataclasses.fields(QAEvalArguments)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown QA settings: {', '.join(unknown)}")
        try:
            settings = QAEvalArguments(**{name: value for name, value in recorded.items() if name in names})
            # Windowing in this process (not the training's workers); "no answer" as the record says, unless given.
            settings = dataclasses.replace(
                settings, **{"preprocessing_num_workers": None, "version_2_with_negative": None, **overrides})
            tokenizer = AutoTokenizer.from_pretrained(folder)
            settings.window_config(tokenizer)
        except ValueError as err:
            raise UsageError(f"{model_dir}: {err}") from err
        # As `run_qa.py --do_predict`: the option if given, else what the model's record says it was trained with.
        version_2 = settings.version_2_with_negative
        if version_2 is None:
            version_2 = default_version_2_with_negative(recorded_version_2_with_negative(str(folder)), False)
        model = AutoModelForQuestionAnswering.from_pretrained(folder)
        return cls(model, tokenizer, settings, version_2, prediction_arguments(folder, batch_size, bf16))

    def answer(self, question: str, context: str) -> QAAnswer:
        return self.answer_batch([question], [context])[0]

    def answer_batch(self, questions: Sequence[str], contexts: Sequence[str],
                     where: Sequence[str] | None = None) -> list[QAAnswer]:
        """Each (question, context) pair's answer, in order. `where` names each pair in the QADataError raised for
        an empty question or context (default: "pair <i>")."""
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        where = where or [f"pair {index}" for index in range(len(questions))]
        stats = RecordStats()
        records = [check_record({"id": str(index), "question": question, "context": context}, place,
                                require_answers=False, repair_offsets=False, stats=stats, name_id=False)
                   for index, (question, context, place) in enumerate(zip(questions, contexts, where))]
        if not records:
            return []
        examples = Dataset.from_list(records, features=FLAT_FEATURES)
        features = window_split(examples, self.tokenizer, self.windows, self.settings, self.training_args,
                                with_labels=False, with_postprocess_columns=True, desc="Windowing")
        _, output = evaluate_qa(self.trainer, examples, features,
                                self.settings.postprocess_config(self.version_2_with_negative), None,
                                prefix="predict")
        return [self._answer_of(record["id"], output) for record in records]

    def _answer_of(self, example_id: str, output: Any) -> QAAnswer:
        offsets = output.answer_offsets[example_id]
        null_odds = output.null_odds.get(example_id)
        # The answer's n-best entry is the first one at its offsets; an abstention's, the no-answer entry.
        wanted = list(offsets) if offsets is not None else [0, 0]
        entry = next((entry for entry in output.nbest[example_id]
                      if entry["offsets"] == wanted and (offsets is not None or entry["text"] == "")), None)
        return QAAnswer(
            text=output.predictions[example_id],
            start=None if offsets is None else offsets[0],
            end=None if offsets is None else offsets[1],
            score=None if entry is None else float(entry["probability"]),
            # No span at all gives infinite odds, which JSON cannot hold.
            null_odds=float(null_odds) if null_odds is not None and math.isfinite(null_odds) else None,
            abstained=offsets is None,
        )


@dataclass
class Classification:
    """One text's label (the most probable class) and every class's probability, in the model's class order."""

    label: str
    probabilities: dict[str, float]


class TweetClassifier:
    """A fine-tuned classifier with the preprocessing it was trained with (run_arguments.json: cleaning,
    lemmatizing, the text length), its class names from its config."""

    def __init__(self, model: Any, tokenizer: PreTrainedTokenizerBase, settings: dict[str, Any],
                 training_args: TrainingArguments):
        self.settings = settings
        self.label_names = [model.config.id2label[index] for index in sorted(model.config.id2label)]
        self.tokenizer = tokenizer
        self.training_args = training_args
        keep_head_in_fp32(model, training_args)
        self.trainer = BaseTrainer(model=model, args=training_args, processing_class=tokenizer,
                                   data_collator=classification_collator(tokenizer, settings["pad_to_max_length"]))

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, batch_size: int = 8, bf16: bool = False) -> TweetClassifier:
        folder = model_folder(model_dir)
        recorded = recorded_arguments(folder, "DataTrainingArguments")
        settings = {name: recorded.get(name, default) for name, default in CLASSIFIER_DEFAULTS.items()}
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        return cls(model, tokenizer, settings, prediction_arguments(folder, batch_size, bf16))

    def text_of(self, record: dict[str, Any]) -> Any:
        """A record's text: the column(s) the model was trained on (several joined as in training), else `tweet`,
        else `text`; None without any."""
        trained = self.settings["text_column"].split(",")
        if all(name in record for name in trained):
            return self.settings["text_column_delimiter"].join(str(record[name]) for name in trained)
        return next((record[name] for name in ("tweet", "text") if name in record), None)

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str], where: Sequence[str] | None = None) -> list[Classification]:
        """Each text's label and class probabilities, in order; a UsageError naming the text (`where`, default
        "text <i>") that is not a non-empty string."""
        where = where or [f"text {index}" for index in range(len(texts))]
        for text, place in zip(texts, where):
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"{place}: {'empty text' if isinstance(text, str) else f'{text!r} is not text'}: "
                                 "give a non-empty `tweet` or `text` field")
        if not texts:
            return []
        column = "text"
        _, model_inputs = preprocess_splits(
            {"test": Dataset.from_dict({column: list(texts)})}, self.tokenizer, self.training_args, column,
            self.settings["clean_text"], self.settings["lemmatize"], self.settings["max_seq_length"],
            self.settings["pad_to_max_length"],
        )
        probabilities = probabilities_of(self.trainer.predict(model_inputs["test"]).predictions)
        return [Classification(self.label_names[int(row.argmax())],
                               dict(zip(self.label_names, (float(p) for p in row), strict=True)))
                for row in probabilities]


def load_predictor(model_dir: str | Path, batch_size: int = 8, bf16: bool = False) -> QAReader | TweetClassifier:
    """The model folder's predictor, by its kind (`model_kind`)."""
    if model_kind(model_dir) == QUESTION_ANSWERING:
        return QAReader.from_pretrained(model_dir, batch_size=batch_size, bf16=bf16)
    return TweetClassifier.from_pretrained(model_dir, batch_size=batch_size, bf16=bf16)


def answer_record(answer: QAAnswer) -> dict[str, Any]:
    """The fields predict.py adds to a QA input record."""
    return {"answer": answer.text, "answer_start": answer.start, "answer_end": answer.end, "score": answer.score,
            "null_odds": answer.null_odds, "abstained": answer.abstained}


def classification_record(result: Classification) -> dict[str, Any]:
    """The fields predict.py adds to a tweet input record."""
    return {"predicted_label": result.label, "probabilities": result.probabilities}
