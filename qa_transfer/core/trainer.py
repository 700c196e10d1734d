"""The Trainer that every script of this project uses: results written atomically, evaluation in dataset order,
the training loss of the whole run, models readable by others."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch
from torch.utils.data import DataLoader, SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import EvalLoopOutput, TrainOutput, has_length

from qa_transfer.core.compilation import check_torch_compile
from qa_transfer.core.precision import precision_name
from qa_transfer.core.results_io import share_private_files, write_json_atomic
from qa_transfer.core.upgrade_guards import check_trainer_internals

logger = logging.getLogger("qa_transfer.core.trainer")


def save_results(trainer: Trainer, split: str, metrics: dict[str, Any]) -> None:
    """A step's metrics logged and written (`<split>_results.json`, all_results.json), as the transformers examples
    do; after training (`split` "train"), the Trainer's state as well (trainer_state.json)."""
    trainer.log_metrics(split, metrics)
    trainer.save_metrics(split, metrics)
    if split == "train":
        trainer.save_state()


class LossSumRecord(TrainerCallback, ExportableState):
    """Keeps, in each checkpoint's trainer_state.json, the sum of the training losses of every step so far: a run
    resumed from it reports the mean loss over the whole run, however sparse the logged losses are."""

    def __init__(self, trainer: Trainer | None = None):
        self.trainer = trainer  # None in the copy the Trainer makes when restoring callback states
        self.resumed_sum = 0.0  # the steps before the checkpoint this run resumed from
        self.training_began = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.training_began = True

    def state(self) -> dict[str, Any]:
        # The Trainer keeps its running sums in two private attributes (the logged steps, the steps since), which
        # it makes just before on_train_begin (upgrade_guards checks that): TrainerState asks for this state earlier,
        # when it is made. Only the main process saves, with its own losses.
        session_sum = 0.0
        if self.trainer is not None and self.training_began:
            session_sum = self.trainer._total_loss_scalar + self.trainer._tr_loss.item()
        return {"args": {}, "attributes": {"loss_sum": self.resumed_sum + session_sum}}


def checkpoint_record(checkpoint: str) -> tuple[int, float | None]:
    """The global step that a checkpoint's trainer_state.json records (0 if unreadable), and the loss sum that
    LossSumRecord kept in it (None in a checkpoint without one)."""
    try:
        with open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8") as handle:
            state = json.load(handle)
        step = int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, None
    record = (state.get("stateful_callbacks") or {}).get(LossSumRecord.__name__) or {}
    loss_sum = (record.get("attributes") or {}).get("loss_sum") if isinstance(record, dict) else None
    return step, loss_sum


def whole_run_loss(log_history: list[dict[str, Any]], resumed_at: int, last_step: int,
                   resumed_loss: float) -> float | None:
    """For a checkpoint without a LossSumRecord: the mean training loss over every step of a run resumed at step
    `resumed_at`, the logged losses up to that step (each the mean of the steps since the previous log) standing
    for the steps before it, `resumed_loss` (the Trainer's mean over the steps it ran) for the rest. None when no
    loss was logged before the resume."""
    logged_steps, logged_sum, previous = 0, 0.0, 0
    for entry in log_history:
        if "loss" in entry and previous < entry.get("step", 0) <= resumed_at:
            logged_sum += entry["loss"] * (entry["step"] - previous)
            logged_steps += entry["step"] - previous
            previous = entry["step"]
    if not logged_steps or last_step <= 0:
        return None
    return (logged_sum / logged_steps * resumed_at + resumed_loss * (last_step - resumed_at)) / last_step


class BaseTrainer(Trainer):
    """The Trainer, with these changes:

    - `save_metrics` writes `<split>_results.json` and `all_results.json` atomically (results_io), so a killed
      run or a full disk never leaves half a file; `all_results.json` gathers the metrics this run saved, where
      the Trainer's would merge them into an earlier run's file in the same --output_dir; every split's results
      say which arithmetic produced them (`<split>_precision`: fp32, bf16, `bf16 (CPU autocast)`, ...);
    - evaluation and prediction batches keep the dataset's order even with `--train_sampling_strategy
      group_by_length` (which this transformers release applies to them too): QA post-processing matches logits
      to windows by position, and the classifier's predictions must line up with their rows;
    - after a resumed training, `train_loss` is the mean over the whole run, not over the resumed steps only;
    - saved models and checkpoints get the file mode of the other outputs (the Trainer writes the weights 0600);
    - under `--torch_compile`, a machine that cannot compile logs one line and runs the model uncompiled
      (compilation.check_torch_compile);
    - a validation pass made with `predict` (for the predictions as well as the scores) is logged as an
      evaluation.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        check_trainer_internals()  # a transformers release without the internals used here stops the run
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if training_args is not None:
            check_torch_compile(training_args)  # where this machine cannot compile: one line, then a plain run
        super().__init__(*args, **kwargs)
        self.all_results: dict[str, float] = {}
        self.loss_sum_record = LossSumRecord(self)
        self.add_callback(self.loss_sum_record)

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
    # the whole DataLoader through private helpers), so this overrides the private method they call (listed in
    # upgrade_guards): the Trainer's own choice without length grouping (sequential on one process, its default
    # sharding on several).
    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        if eval_dataset is None or not has_length(eval_dataset) or self.args.world_size > 1:
            return None
        return SequentialSampler(eval_dataset)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> TrainOutput:
        resumed_at, resumed_sum = (checkpoint_record(resume_from_checkpoint) if isinstance(resume_from_checkpoint, str)
                                   else (0, None))
        self.loss_sum_record.resumed_sum = resumed_sum or 0.0
        output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        if not resumed_at:
            return output
        last_step = self.state.global_step
        if resumed_sum is not None:
            loss = (resumed_sum + output.training_loss * (last_step - resumed_at)) / max(last_step, 1)
        else:
            loss = whole_run_loss(self.state.log_history, resumed_at, last_step, output.training_loss)
        if loss is None:
            logger.warning("train_loss is the mean of steps %d-%d only: no loss was logged before the resume "
                           "(a smaller --logging_steps records it)", resumed_at + 1, last_step)
            return output
        for entry in self.state.log_history:  # the Trainer's final log entry, which loss_curve.png and
            if "train_loss" in entry:  # trainer_state.json keep
                entry["train_loss"] = loss
        return TrainOutput(output.global_step, loss, {**output.metrics, "train_loss": loss})

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        folder = output_dir or self.args.output_dir
        if self.args.should_save and os.path.isdir(folder):
            share_private_files(folder)

    def evaluation_loop(self, dataloader: DataLoader, description: str, prediction_loss_only: bool | None = None,
                        ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval") -> EvalLoopOutput:
        if metric_key_prefix == "eval":
            description = "Evaluation"
        return super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
