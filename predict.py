#!/usr/bin/env python
"""Answer questions or label tweets with a fine-tuned model, outside the training scripts.

    python predict.py --model out/qa_quickstart --input questions.jsonl --output answers.jsonl
    python predict.py --model out/vaccine_minilm --input new_tweets.csv --output -
    echo '{"question": "Who?", "context": "Ada wrote it."}' | python predict.py --model out/qa_quickstart \
--input - --output -

The model folder says which kind it is (run_qa.py's qa_run_info.json, else its config's architecture). Input:
JSON Lines, a JSON array or CSV; `-` reads standard input. A question-answering model needs `question` and
`context` in each record and adds `answer` ("" when it abstains), `answer_start`, `answer_end` (character offsets
in the context), `score`, `null_odds` and `abstained`; a classifier needs `tweet` or `text` and adds
`predicted_label` and `probabilities`. Output: JSON Lines, each input record with those fields, in input order;
`-` writes standard output. The windows, the no-answer threshold and the tweet cleaning are those the model was
trained with: the answers are those of `run_qa.py --do_predict`, the labels those of run_classification.py's
predictions.csv.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets

from qa_transfer.core.arguments import ScriptArgumentParser, parse_args_with_config
from qa_transfer.core.errors import ArgumentError, PredictionInputError
from qa_transfer.core.scripts import run_script
from qa_transfer.inference.predictors import (
    QUESTION_ANSWERING,
    QAReader,
    TweetClassifier,
    answer_record,
    classification_record,
    model_kind,
)
from qa_transfer.inference.records import json_line, read_records, require_fields, write_output


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "The folder of a model that run_qa.py or run_classification.py trained."})
    input: str = field(metadata={"help": "JSON Lines, a JSON array or CSV of records; - for standard input."})
    output: str = field(metadata={"help": "Where the JSON Lines output goes; - for standard output."})
    batch_size: int = field(default=8, metadata={"help": "Windows (QA) or texts per forward pass."})
    bf16: bool = field(
        default=False,
        metadata={"help": "bf16 autocast, on a GPU or on a CPU with bf16 instructions (as the scripts' --bf16)."},
    )


def parse_arguments(argv: list[str] | None) -> PredictArguments:
    parser = ScriptArgumentParser((PredictArguments,), description=__doc__)
    (args,) = parse_args_with_config(parser, argv)
    if args.batch_size < 1:
        raise ArgumentError(f"--batch_size must be at least 1, got {args.batch_size}")
    return args


def main(argv: list[str] | None = None) -> None:
    # --- Parse; the model's kind and every input record, checked before anything is written -------------
    args = parse_arguments(argv)
    datasets.disable_progress_bars()  # one line per run at most: the output may be standard output
    kind = model_kind(args.model)
    records = read_records(args.input)
    where = [place for place, _ in records]

    # --- Predict, in input order ---------------------------------------------------------------------
    if kind == QUESTION_ANSWERING:
        require_fields(records, ("question", "context"), "question-answering")
        reader = QAReader.from_pretrained(args.model, batch_size=args.batch_size, bf16=args.bf16)
        answers = reader.answer_batch([record["question"] for _, record in records],
                                      [record["context"] for _, record in records], where)
        added = [answer_record(answer) for answer in answers]
    else:
        classifier = TweetClassifier.from_pretrained(args.model, batch_size=args.batch_size, bf16=args.bf16)
        texts = [classifier.text_of(record) for _, record in records]
        if None in texts:
            place = where[texts.index(None)]
            raise PredictionInputError(f"{place}: missing field 'tweet' or 'text' (a text-classification model "
                                       "needs one)")
        added = [classification_record(result) for result in classifier.classify_batch(texts, where)]

    # --- Write: each input record with its prediction ---------------------------------------------------
    write_output(args.output, "".join(json_line({**record, **extra}) for (_, record), extra in zip(records, added)))
    if args.output != "-":
        print(f"Wrote {len(records)} predictions to {args.output}")


if __name__ == "__main__":
    run_script(main)
