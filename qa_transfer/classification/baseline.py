"""The TF-IDF + logistic-regression baseline and comparison.md, its table beside the fine-tuned model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from qa_transfer.classification.data import LABEL_IDS_COLUMN
from qa_transfer.classification.metrics import classification_metrics, unprefixed
from qa_transfer.classification.tweets import PREPROCESSED_TEXT_COLUMN
from qa_transfer.core.columns import column_list


def tfidf_baseline_probabilities(
    train_texts: list[str],
    train_label_ids: list[int],
    eval_texts: list[str],
    num_labels: int,
    class_weight: str | None,
    seed: int,
) -> np.ndarray:
    """Fit TF-IDF (word 1-2 grams, sublinear tf) + logistic regression; class probabilities for `eval_texts`."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000, class_weight=class_weight, random_state=seed),
    )
    model.fit(train_texts, train_label_ids)
    probabilities = np.zeros((len(eval_texts), num_labels))
    # A class absent from the training split has no column of its own; it keeps probability 0.
    probabilities[:, model.classes_] = model.predict_proba(eval_texts)
    return probabilities


COMPARISON_COLUMNS = (
    ("accuracy", "accuracy"),
    ("macro P", "precision_macro"),
    ("macro R", "recall_macro"),
    ("macro F1", "f1_macro"),
    ("weighted P", "precision_weighted"),
    ("weighted R", "recall_weighted"),
    ("weighted F1", "f1_weighted"),
)


def comparison_table(rows: dict[str, dict[str, float]], note: str) -> str:
    """comparison.md: a Markdown table of each model's accuracy and macro / weighted precision, recall and F1."""
    lines = [
        "| model | " + " | ".join(title for title, _ in COMPARISON_COLUMNS) + " |",
        "|---|" + "---:|" * len(COMPARISON_COLUMNS),
    ]
    for model_name, metrics in rows.items():
        lines.append(f"| {model_name} | " + " | ".join(f"{metrics[key]:.4f}" for _, key in COMPARISON_COLUMNS) + " |")
    return "# Model comparison\n\n" + note + "\n\n" + "\n".join(lines) + "\n"


def tfidf_baseline_comparison(
    preprocessed: dict[str, Any], labels: Sequence[int], label_names: list[str], eval_metrics: dict[str, float],
    files: dict[str, Any], model_name: str, class_weights: str, seed: int, settings: str,
) -> tuple[dict[str, float], str]:
    """The TF-IDF + logistic-regression baseline fitted on the same preprocessed training split and scored on the
    validation split: its metrics, and comparison.md's table of it beside the fine-tuned model's `eval_metrics`."""
    baseline_probabilities = tfidf_baseline_probabilities(
        column_list(preprocessed["train"], PREPROCESSED_TEXT_COLUMN),
        column_list(preprocessed["train"], LABEL_IDS_COLUMN),
        column_list(preprocessed["validation"], PREPROCESSED_TEXT_COLUMN),
        len(label_names),
        class_weight="balanced" if class_weights == "balanced" else None,
        seed=seed,
    )
    baseline_metrics = classification_metrics(labels, baseline_probabilities, label_names)
    note = (
        f"Validation file `{files['validation']}` ({len(labels)} rows); training file `{files['train']}` "
        f"({len(preprocessed['train'])} rows); {settings}, class_weights={class_weights}."
    )
    rows = {f"{model_name} (fine-tuned)": unprefixed("eval", eval_metrics),
            "TF-IDF + logistic regression": baseline_metrics}
    return baseline_metrics, comparison_table(rows, note)
