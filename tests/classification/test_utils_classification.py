"""classification metrics, training and baseline in-process: metrics and report, weighted loss, the TF-IDF baseline,
the comparison, predictions.csv."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch

from qa_transfer.classification.baseline import comparison_table, tfidf_baseline_probabilities
from qa_transfer.classification.metrics import (
    classification_metrics,
    predictions_csv,
    prefixed,
    probabilities_of,
    report_text,
    unprefixed,
)
from qa_transfer.classification.training import WeightedCrossEntropy, balanced_class_weights

LABEL_NAMES = ["neutral", "anti-vax", "pro-vax"]
LABELS = np.array([0, 0, 1, 1, 2, 2])
PROBABILITIES = np.array(
    [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8]]
)


def test_balanced_class_weights_and_weighted_loss():
    assert balanced_class_weights([0, 0, 0, 1, 2, 2], 4) == [0.5, 1.5, 0.75, 1.0]
    weights = balanced_class_weights([0, 0, 0, 1, 2, 2, 2], 3)
    assert all(type(weight) is float for weight in weights) and repr(weights[0]) == "0.7777777777777778"
    loss = WeightedCrossEntropy([0.5, 1.5, 0.75])
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [1.0, -2.0, 0.5], [0.0, 0.0, 3.0]])
    labels = torch.tensor([0, 1, 2, 1])
    per_example = torch.nn.functional.cross_entropy(logits, labels, reduction="none") * torch.tensor(
        [0.5, 1.5, 0.75, 1.5]
    )
    assert torch.allclose(loss({"logits": logits}, labels), per_example.mean())
    # with gradient accumulation the Trainer gives the example count of the whole accumulated batch
    assert torch.allclose(loss({"logits": logits}, labels, num_items_in_batch=8), per_example.sum() / 8)
    # --label_smoothing_factor 0.1 reaches the weighted loss: target 0.9 one-hot + 0.1 uniform, each class weighted
    smoothed = WeightedCrossEntropy([0.5, 1.5, 0.75], label_smoothing=0.1)
    weights = torch.tensor([0.5, 1.5, 0.75])
    nll = -torch.log_softmax(logits, dim=-1)
    by_hand = 0.9 * weights[labels] * nll[torch.arange(4), labels] + 0.1 / 3 * (nll * weights).sum(dim=-1)
    assert torch.allclose(smoothed({"logits": logits}, labels), by_hand.mean())


def test_classification_metrics_against_hand_counts():
    labels, probabilities = LABELS, PROBABILITIES
    probabilities = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8]]
    )
    metrics = classification_metrics(labels, probabilities, LABEL_NAMES)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["neutral_precision"] == pytest.approx(1 / 2) and metrics["neutral_recall"] == pytest.approx(1 / 2)
    assert metrics["anti-vax_f1"] == pytest.approx(1 / 2) and metrics["pro-vax_f1"] == pytest.approx(1.0)
    assert metrics["f1_macro"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert metrics["pro-vax_support"] == 2 and metrics["pro-vax_roc_auc"] == pytest.approx(1.0)
    # a class absent from the labels has no ROC AUC; the macro AUC averages the others
    metrics = classification_metrics(np.array([0, 0, 2, 2]), probabilities[[0, 1, 4, 5]], LABEL_NAMES)
    assert "anti-vax_roc_auc" not in metrics
    assert metrics["roc_auc_macro"] == pytest.approx((metrics["neutral_roc_auc"] + metrics["pro-vax_roc_auc"]) / 2)


def test_probabilities_are_the_softmax_of_the_logits():
    logits = np.array([[0.0, 0.0, np.log(2.0)], [1000.0, 0.0, 0.0]])
    expected = np.array([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(probabilities_of(logits), expected, atol=1e-12)
    np.testing.assert_allclose(probabilities_of((logits, "hidden states")), expected, atol=1e-12)


def test_report_lists_each_class_and_its_roc_auc():
    report = report_text(LABELS, PROBABILITIES, LABEL_NAMES, "tiny on val.csv (6 rows)")
    assert report.startswith("tiny on val.csv (6 rows)\n\n")
    neutral = next(line for line in report.splitlines() if line.split()[:1] == ["neutral"])
    assert neutral.split()[1:] == ["0.5000", "0.5000", "0.5000", "2"]  # precision, recall, F1, support
    auc_part = report[report.index("ROC AUC (one-vs-rest)"):].splitlines()[1:]
    assert [line.split()[0] for line in auc_part] == [*LABEL_NAMES, "macro"]
    assert auc_part[2].split()[1] == "1.0000"


def test_prefixes_go_on_and_come_off():
    metrics = {"accuracy": 0.5, "f1_macro": 0.25}
    assert prefixed("baseline", metrics) == {"baseline_accuracy": 0.5, "baseline_f1_macro": 0.25}
    assert unprefixed("eval", prefixed("eval", metrics)) == metrics


def test_comparison_table_has_one_row_per_model_in_order():
    metrics = classification_metrics(LABELS, PROBABILITIES, LABEL_NAMES)
    baseline = classification_metrics(LABELS, np.eye(3)[[0, 0, 1, 1, 2, 2]], LABEL_NAMES)  # all right
    table = comparison_table({"model (fine-tuned)": metrics, "TF-IDF": baseline}, "a note")
    lines = table.splitlines()
    assert lines[:3] == ["# Model comparison", "", "a note"]
    header, rule, model_row, baseline_row = lines[4:]
    assert header.split(" | ")[1:4] == ["accuracy", "macro P", "macro R"] and rule.count("---:") == 7
    assert model_row.startswith("| model (fine-tuned) | 0.6667 |")
    assert baseline_row == "| TF-IDF | " + " | ".join(["1.0000"] * 7) + " |"


def test_predictions_csv_keeps_the_text_and_names_the_class():
    text = predictions_csv([7, "b"], ["line one\r\nline two", 'quote "x"'], PROBABILITIES[[0, 2]], LABEL_NAMES)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [
        ["id", "text", "predicted_label", "probability_neutral", "probability_anti-vax", "probability_pro-vax"],
        ["7", "line one\r\nline two", "neutral", "0.800000", "0.100000", "0.100000"],
        ["b", 'quote "x"', "anti-vax", "0.200000", "0.700000", "0.100000"],
    ]


def test_tfidf_baseline_learns_words_and_leaves_an_unseen_class_at_zero():
    train_texts = ["vaccines save lives", "vaccines save many lives", "the jab is poison", "poison jab again",
                   "vaccines save", "jab poison"]
    train_ids = [2, 2, 1, 1, 2, 1]  # class 0 never appears in training
    probabilities = tfidf_baseline_probabilities(
        train_texts, train_ids, ["vaccines save lives", "poison jab"], 3, class_weight=None, seed=0
    )
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities[:, 0] == 0).all()
    assert probabilities.argmax(axis=1).tolist() == [2, 1]


def test_weighted_loss_trains_towards_the_weighted_class():
    # A sanity check of the direction: with one logit per class, the weighted loss's gradient pushes up the heavy
    # class's logit more than plain cross-entropy does.
    logits = torch.zeros(2, 3, requires_grad=True)
    labels = torch.tensor([0, 1])
    WeightedCrossEntropy([1.0, 4.0, 1.0])({"logits": logits}, labels).backward()
    assert -logits.grad[1, 1] > -logits.grad[0, 0] > 0
