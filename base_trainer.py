"""The Trainer that every script of this project uses: results written atomically, evaluation in dataset order."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_utils import has_length

from precision import precision_name
from results_io import write_json_atomic


class BaseTrainer(Trainer):
    """The Trainer, with two changes:

    - `save_metrics` writes `<split>_results.json` and `all_results.json` atomically (results_io), so a killed
      run or a full disk never leaves half a file; `all_results.json` gathers the metrics this run saved, where
      the Trainer's would merge them into an earlier run's file in the same --output_dir; every split's results
      say which arithmetic produced them (`<split>_precision`: fp32, bf16, `bf16 (CPU autocast)`, ...);
    - evaluation and prediction batches keep the dataset's order even with `--train_sampling_strategy
      group_by_length` (which this transformers release applies to them too): QA post-processing matches logits
      to windows by position, and the classifier's predictions must line up with their rows.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.all_results: dict[str, float] = {}

    def save_metrics(self, split: str, metrics: dict[str, float], combined: bool = True) -> None:
        if not self.is_world_process_zero():
            return
        if split in ("train", "eval", "predict"):  # the Trainer's own steps, not e.g. a TF-IDF baseline
            metrics = {**metrics, f"{split}_precision": precision_name(self.args)}
        write_json_atomic(os.path.join(self.args.output_dir, f"{split}_results.json"), metrics)
        if combined:
            self.all_results.update(metrics)
            write_json_atomic(os.path.join(self.args.output_dir, "all_results.json"), self.all_results)

    # The Trainer has no public hook for the evaluation sampler (get_eval_dataloader / get_test_dataloader build
    # the whole DataLoader through private helpers), so this overrides the private method they call: the
    # Trainer's own choice without length grouping (sequential on one process, its default sharding on several).
    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        if eval_dataset is None or not has_length(eval_dataset) or self.args.world_size > 1:
            return None
        return SequentialSampler(eval_dataset)
