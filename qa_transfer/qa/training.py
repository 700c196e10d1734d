"""The QA Trainer: the project's BaseTrainer with a weight on the no-answer windows' loss, and the one way the
scripts build a Trainer for QA windows (their collator)."""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase, TrainingArguments

from qa_transfer.core.trainer import BaseTrainer
from qa_transfer.qa.windows import qa_data_collator


def span_loss(
    start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor, end_positions: torch.Tensor,
    no_answer_weight: float = 1.0,
) -> torch.Tensor:
    """The QA models' own training loss (the mean of the start and end cross-entropies; a position past the
    window is ignored), with each target on the first token (a no-answer window's) weighing `no_answer_weight`
    times as much as a target inside the context: cross-entropy's class weight on position 0, whose mean is the
    weighted mean over the batch's windows. Weight 1 gives the models' loss."""
    ignored = start_logits.size(1)
    position_weights = torch.ones(ignored, dtype=torch.float32, device=start_logits.device)
    position_weights[0] = no_answer_weight
    losses = [
        torch.nn.functional.cross_entropy(
            logits.float(), positions.reshape(-1).clamp(0, ignored).to(logits.device),
            weight=position_weights.to(logits.device), ignore_index=ignored,
        )
        for logits, positions in ((start_logits, start_positions), (end_logits, end_positions))
    ]
    return (losses[0] + losses[1]) / 2


class QATrainer(BaseTrainer):
    """BaseTrainer with run_qa.py's `--no_answer_loss_weight`: in training, each no-answer window's loss weighs
    that much more (span_loss). A heavier weight moves the balance between answering and abstaining without
    changing the training questions; evaluation losses stay unweighted, comparable between runs."""

    def __init__(self, *args: Any, no_answer_loss_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.no_answer_loss_weight = no_answer_loss_weight
        if no_answer_loss_weight != 1.0:
            # A mean over one batch, like the models' own loss (a Trainer attribute listed in upgrade_guards).
            self.loss_is_scaled_for_ga = False

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if self.no_answer_loss_weight == 1.0 or not model.training or "start_positions" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        forward_inputs = {key: value for key, value in inputs.items()
                          if key not in ("start_positions", "end_positions")}
        outputs = model(**forward_inputs)
        loss = span_loss(outputs["start_logits"], outputs["end_logits"], inputs["start_positions"],
                         inputs["end_positions"], self.no_answer_loss_weight)
        return (loss, outputs) if return_outputs else loss


def qa_trainer(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    training_args: TrainingArguments,
    pad_to_max_length: bool,
    trainer_class: type[BaseTrainer] = BaseTrainer,
    **kwargs: Any,
) -> BaseTrainer:
    """A Trainer (`trainer_class`) over QA windows: the model, the run's TrainingArguments untouched, the tokenizer
    and the windows' collator; `kwargs` go to the Trainer (datasets, compute_metrics, no_answer_loss_weight)."""
    return trainer_class(
        model=model, args=training_args, processing_class=tokenizer,
        data_collator=qa_data_collator(tokenizer, pad_to_max_length, training_args), **kwargs,
    )
