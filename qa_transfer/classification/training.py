"""What the classifier's training adds to the Trainer: balanced class weights and the weighted loss, and the
freezing of the lower layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qa_transfer.core.errors import ArgumentError


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
        )
        if num_items_in_batch is None:
            return losses.mean()
        return losses.sum() / num_items_in_batch


def freeze_lower_layers(model: torch.nn.Module, count: int) -> None:
    """Fix the embeddings and the first `count` layers of the encoder (BERT, RoBERTa, MPNet, DeBERTa-v2, ...)."""
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ArgumentError(f"--freeze_lower_layers: {type(base).__name__} has no encoder.layer list to freeze")
    if not 0 < count <= len(layers):
        raise ArgumentError(f"--freeze_lower_layers must be between 1 and {len(layers)} for this model, got {count}")
    base.embeddings.requires_grad_(False)
    for layer in layers[:count]:
        layer.requires_grad_(False)
