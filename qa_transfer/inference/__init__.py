"""A fine-tuned model used outside the scripts: the QA reader and the tweet classifier (`predictors`), and
predict.py's input and output records (`records`).

    from qa_transfer.inference import load_predictor
    reader = load_predictor("out/qa_quickstart")
    reader.answer("Who wrote it?", "It was written by Ada.")
"""

from qa_transfer.inference.predictors import (
    Classification,
    QAAnswer,
    QAReader,
    TweetClassifier,
    load_predictor,
    model_kind,
)

__all__ = ["Classification", "QAAnswer", "QAReader", "TweetClassifier", "load_predictor", "model_kind"]
