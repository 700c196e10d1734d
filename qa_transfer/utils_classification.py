"""The classifier's metrics and report, its weighted loss, the TF-IDF baseline, and the comparison of the two."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, precision_recall_fscore_support, roc_auc_score
from sklearn.pipeline import make_pipeline
from transformers import DataCollatorWithPadding, TrainingArguments, default_data_collator

from qa_transfer.classification_data import LABEL_IDS_COLUMN, InputError
from qa_transfer.dataset_columns import column_list
from qa_transfer.plots import plot_confusion_matrix, plot_roc_curves
from qa_transfer.results_io import write_text_atomic
from qa_transfer.tweet_preprocessing import PREPROCESSED_TEXT_COLUMN, preprocess_dataset

# --- Metrics and report ---------------------------------------------------------------------------------------


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


# --- Weighted loss ----------------------------------------------------------------------------------------------


def balanced_class_weights(label_ids: list[int], num_labels: int) -> list[float]:
    """n_samples / (n_classes * n_class_samples), as scikit-learn's "balanced"; 1.0 for a class with no rows."""
    counts = np.bincount(label_ids, minlength=num_labels)
    # Python floats: numpy's would show as np.float64(...) in the log and in run_arguments.json
    return [len(label_ids) / (num_labels * int(count)) if count else 1.0 for count in counts]


class WeightedCrossEntropy:
    """Cross-entropy with a weight per class, for the Trainer's `compute_loss_func`.

    Each example's loss is multiplied by its class weight and the sum divided by the number of examples
    (the Trainer's `num_items_in_batch` across gradient-accumulation steps, when it gives one), so that
    gradient accumulation gives the same loss as one large batch. `label_smoothing` (the Trainer's
    `--label_smoothing_factor`, which a custom loss would otherwise ignore) mixes the one-hot target with the
    uniform distribution, as `torch.nn.functional.cross_entropy` defines it.
    """

    def __init__(self, weights: list[float], label_smoothing: float = 0.0):
        self.weights = torch.tensor(weights, dtype=torch.float32)
        self.label_smoothing = label_smoothing

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"].float()
        losses = torch.nn.functional.cross_entropy(
            logits, labels, weight=self.weights.to(logits.device), reduction="none",
            label_smoothing=self.label_smoothing,
        )  # fmt: skip
        if num_items_in_batch is None:
            return losses.mean()
        return losses.sum() / num_items_in_batch


# --- The TF-IDF baseline and the comparison ---------------------------------------------------------------------


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


def freeze_lower_layers(model: torch.nn.Module, count: int) -> None:
    """Fix the embeddings and the first `count` layers of the encoder (BERT, RoBERTa, MPNet, DeBERTa-v2, ...)."""
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise InputError(f"--freeze_lower_layers: {type(base).__name__} has no encoder.layer list to freeze")
    if not 0 < count <= len(layers):
        raise InputError(f"--freeze_lower_layers must be between 1 and {len(layers)} for this model, got {count}")
    base.embeddings.requires_grad_(False)
    for layer in layers[:count]:
        layer.requires_grad_(False)


def tokenized_splits(
    preprocessed: dict[str, Dataset], tokenizer: Any, max_seq_length: int, pad_to_max_length: bool, **map_options: Any
) -> dict[str, Dataset]:
    """The model inputs of each preprocessed split: token ids (and label ids where the split has them)."""

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(
            batch[PREPROCESSED_TEXT_COLUMN],
            padding="max_length" if pad_to_max_length else False,
            max_length=max_seq_length,
            truncation=True,
        )

    model_inputs = {}
    for split, dataset in preprocessed.items():
        model_inputs[split] = dataset.map(
            tokenize,
            batched=True,
            remove_columns=[column for column in dataset.column_names if column != LABEL_IDS_COLUMN],
            desc=f"Tokenizing the {split} split",
            **map_options,
        )
    return model_inputs


def preprocess_splits(
    raw_datasets: dict[str, Dataset], tokenizer: Any, training_args: TrainingArguments, text_column: str,
    clean_text: bool, lemmatize: bool, max_seq_length: int, pad_to_max_length: bool, **map_options: Any,
) -> tuple[dict[str, Dataset], dict[str, Dataset]]:
    """One preprocessing path for every split, in training and in prediction (`inference.TweetClassifier`): clean /
    lemmatize, then tokenize to at most `max_seq_length` tokens (both cached by datasets); returns the preprocessed
    splits and the model inputs."""
    with training_args.main_process_first(desc="dataset preprocessing"):
        preprocessed = {
            split: preprocess_dataset(dataset, text_column, clean=clean_text, lemmatize=lemmatize, **map_options)
            for split, dataset in raw_datasets.items()
        }  # fmt: skip
        max_seq_length = min(max_seq_length, tokenizer.model_max_length)
        model_inputs = tokenized_splits(preprocessed, tokenizer, max_seq_length, pad_to_max_length, **map_options)
    return preprocessed, model_inputs


def classification_collator(tokenizer: Any, pad_to_max_length: bool, pad_to_multiple_of: int | None = None) -> Any:
    """Texts already padded with --pad_to_max_length; otherwise each batch padded to its own longest text (rounded
    up to `pad_to_multiple_of`, if given)."""
    return default_data_collator if pad_to_max_length else DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=pad_to_multiple_of)


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
            "TF-IDF + logistic regression": baseline_metrics}  # fmt: skip
    return baseline_metrics, comparison_table(rows, note)


def write_evaluation_reports(output_dir: Path, model_name: str, validation_file: Path, labels: Any,
                             probabilities: Any, label_names: list[str]) -> None:
    """classification_report.txt, roc_curves.png and confusion_matrix.png of one evaluation."""
    title = f"{model_name} on {validation_file} ({len(labels)} rows)"
    write_text_atomic(output_dir / "classification_report.txt", report_text(labels, probabilities, label_names, title))
    plot_roc_curves(labels, probabilities, label_names, output_dir / "roc_curves.png")
    # The figure names its model and split, so that it reads alone (in a report, beside another run's).
    plot_confusion_matrix(labels, probabilities.argmax(axis=-1), label_names, output_dir / "confusion_matrix.png",
                          title=f"{Path(model_name).name} on {validation_file.name}")
