"""The classifier's metrics, its evaluation report (text, ROC curves, confusion matrix) and predictions.csv."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn.metrics import accuracy_score, classification_report, precision_recall_fscore_support, roc_auc_score

from qa_transfer.core.plots import plot_confusion_matrix, plot_roc_curves
from qa_transfer.core.results_io import write_text_atomic


def roc_auc_per_class(labels: np.ndarray, probabilities: np.ndarray) -> dict[int, float]:
    """One-vs-rest ROC AUC of each class that has both positive and negative examples in `labels`."""
    aucs = {}
    for index in range(probabilities.shape[1]):
        is_class = labels == index
        if is_class.any() and not is_class.all():
            aucs[index] = float(roc_auc_score(is_class, probabilities[:, index]))
    return aucs


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, label_names: list[str]) -> dict[str, float]:
    """Accuracy; precision / recall / F1 macro and weighted; per class precision / recall / F1 / support and
    one-vs-rest ROC AUC (`<class>_<metric>`); and the macro ROC AUC over the classes where it is defined."""
    labels = np.asarray(labels)
    predictions = probabilities.argmax(axis=-1)
    class_ids = list(range(len(label_names)))
    metrics: dict[str, float] = {"accuracy": float(accuracy_score(labels, predictions))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predictions, labels=class_ids, average=average, zero_division=0
        )
        metrics.update({f"precision_{average}": precision, f"recall_{average}": recall, f"f1_{average}": f1})
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=class_ids, average=None, zero_division=0
    )
    for index, name in enumerate(label_names):
        metrics.update(
            {
                f"{name}_precision": precision[index],
                f"{name}_recall": recall[index],
                f"{name}_f1": f1[index],
                f"{name}_support": int(support[index]),
            }
        )
    aucs = roc_auc_per_class(labels, probabilities)
    metrics.update({f"{label_names[index]}_roc_auc": auc for index, auc in aucs.items()})
    if aucs:
        metrics["roc_auc_macro"] = float(np.mean(list(aucs.values())))
    return {key: value if isinstance(value, int) else float(value) for key, value in metrics.items()}


def probabilities_of(predictions: np.ndarray | tuple) -> np.ndarray:
    """Class probabilities from a model's predictions (its logits, or a tuple whose first item they are)."""
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    return softmax(logits, axis=-1)


def report_text(labels: np.ndarray, probabilities: np.ndarray, label_names: list[str], title: str) -> str:
    """sklearn's classification report, followed by the one-vs-rest ROC AUC of each class."""
    report = classification_report(
        labels,
        probabilities.argmax(axis=-1),
        labels=list(range(len(label_names))),
        target_names=label_names,
        digits=4,
        zero_division=0,
    )
    aucs = roc_auc_per_class(labels, probabilities)
    auc_lines = [f"{label_names[index]:>20} {auc:.4f}" for index, auc in aucs.items()]
    if aucs:
        auc_lines.append(f"{'macro':>20} {np.mean(list(aucs.values())):.4f}")
    return f"{title}\n\n{report}\nROC AUC (one-vs-rest)\n" + "\n".join(auc_lines) + "\n"


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{key}": value for key, value in metrics.items()}


def unprefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {key.removeprefix(f"{prefix}_"): value for key, value in metrics.items()}


def predictions_csv(ids: list[Any], texts: list[str], probabilities: np.ndarray, label_names: list[str]) -> str:
    """predictions.csv: id, original text, predicted class and each class's probability, one row per text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "predicted_label", *(f"probability_{name}" for name in label_names)])
    for row_id, text, row in zip(ids, texts, probabilities, strict=True):
        writer.writerow([row_id, text, label_names[int(row.argmax())], *(f"{p:.6f}" for p in row)])
    return buffer.getvalue()


def write_evaluation_reports(output_dir: Path, model_name: str, validation_file: Path, labels: Any,
                             probabilities: Any, label_names: list[str]) -> None:
    """classification_report.txt, roc_curves.png and confusion_matrix.png of one evaluation."""
    title = f"{model_name} on {validation_file} ({len(labels)} rows)"
    write_text_atomic(output_dir / "classification_report.txt", report_text(labels, probabilities, label_names, title))
    plot_roc_curves(labels, probabilities, label_names, output_dir / "roc_curves.png")
    # The figure names its model and split, so that it reads alone (in a report, beside another run's).
    plot_confusion_matrix(labels, probabilities.argmax(axis=-1), label_names, output_dir / "confusion_matrix.png",
                          title=f"{Path(model_name).name} on {validation_file.name}")
