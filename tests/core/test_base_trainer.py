"""core.trainer.BaseTrainer, the Trainer every script uses: atomic results for this run only, evaluation batches in
dataset order whatever the training sampler, the whole run's loss sum, and a stop at start-up under a transformers
release without the Trainer internals the project uses (core.upgrade_guards)."""

from __future__ import annotations

import json
import re

import pytest
import torch
import transformers
from datasets import Dataset
from torch.utils.data import DataLoader, SequentialSampler
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from qa_transfer.core.trainer import BaseTrainer, LossSumRecord
from qa_transfer.core.upgrade_guards import check_trainer_internals


def tiny_trainer(model_dir, output_dir, **arguments) -> BaseTrainer:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    collator = DataCollatorWithPadding(AutoTokenizer.from_pretrained(model_dir))
    args = TrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True, **arguments)
    return BaseTrainer(model=model, args=args, data_collator=collator)


@pytest.mark.slow
def test_save_metrics_writes_its_split_and_gathers_this_runs_results(tiny_cls_model, tmp_path):
    (tmp_path / "all_results.json").write_text(json.dumps({"baseline_accuracy": 0.5}))  # an earlier run's
    trainer = tiny_trainer(tiny_cls_model, tmp_path)
    trainer.save_metrics("train", {"train_loss": 1.5, "train_samples": 36})
    trainer.save_metrics("eval", {"eval_loss": 1.25})
    trainer.save_metrics("eval", {"eval_loss": 1.0})  # a later value replaces the earlier one
    # every split of the Trainer's says which arithmetic made it
    assert json.loads((tmp_path / "eval_results.json").read_text()) == {"eval_loss": 1.0, "eval_precision": "fp32"}
    all_results = json.loads((tmp_path / "all_results.json").read_text())
    assert all_results == {"train_loss": 1.5, "train_samples": 36, "train_precision": "fp32", "eval_loss": 1.0,
                           "eval_precision": "fp32"}
    trainer.save_metrics("baseline", {"baseline_accuracy": 0.7})  # not the Trainer's arithmetic
    assert json.loads((tmp_path / "baseline_results.json").read_text()) == {"baseline_accuracy": 0.7}
    trainer.save_metrics("predict", {"predict_samples": 5}, combined=False)
    assert "predict_samples" not in json.loads((tmp_path / "all_results.json").read_text())
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "all_results.json", "baseline_results.json", "eval_results.json", "predict_results.json", "train_results.json"
    ]  # no temporary file left


@pytest.mark.slow
def test_evaluation_keeps_file_order_when_training_groups_by_length(tiny_cls_model, tmp_path):
    trainer = tiny_trainer(tiny_cls_model, tmp_path, train_sampling_strategy="group_by_length",
                           per_device_eval_batch_size=2)
    lengths = [3, 9, 1, 7, 5, 2]
    dataset = Dataset.from_dict({"input_ids": [[5] * n for n in lengths], "labels": [0] * 6})
    assert isinstance(trainer._get_eval_sampler(dataset), SequentialSampler)
    order = [row["input_ids"].shape[-1] for row in trainer.get_test_dataloader(dataset)]
    assert order == [9, 7, 5]  # batches in file order, each padded to its longest row


def test_a_transformers_release_without_the_overridden_sampler_hook_stops_the_run(monkeypatch):
    from transformers import Trainer

    check_trainer_internals()  # this release has it
    monkeypatch.delattr(Trainer, "_get_eval_sampler")
    with pytest.raises(RuntimeError, match="_get_eval_sampler"):
        check_trainer_internals()


# Stand-ins for Trainer methods of a later transformers release: the checks read their source.
def loop_without_the_unlogged_loss(self, *args, **kwargs):
    self._total_loss_scalar = 0.0
    self.control = self.callback_handler.on_train_begin(self.args, self.state, self.control)


def loop_making_the_sums_too_late(self, *args, **kwargs):
    self.control = self.callback_handler.on_train_begin(self.args, self.state, self.control)
    self._tr_loss = torch.tensor(0.0)
    self._total_loss_scalar = 0.0


def loader_with_its_own_sampler(self, test_dataset):
    return DataLoader(test_dataset, sampler=SequentialSampler(test_dataset), batch_size=self.args.eval_batch_size)


def training_step_ignoring_the_scaling_flag(self, model, inputs, num_items_in_batch=None):
    return self.compute_loss(model, inputs) / self.current_gradient_accumulation_steps


@pytest.mark.parametrize("name, replacement, message", [
    ("_get_eval_sampler", None, "Trainer has no method _get_eval_sampler any more: .*BaseTrainer"),
    ("get_test_dataloader", loader_with_its_own_sampler,
     "get_test_dataloader no longer uses _get_eval_sampler"),
    ("loss_is_scaled_for_ga", None, "Trainer has no attribute loss_is_scaled_for_ga any more: .*QATrainer"),
    ("training_step", training_step_ignoring_the_scaling_flag,
     "training_step no longer uses loss_is_scaled_for_ga"),
    ("_inner_training_loop", loop_without_the_unlogged_loss,
     "_inner_training_loop no longer sets _tr_loss before the on_train_begin event: .*LossSumRecord"),
    ("_inner_training_loop", loop_making_the_sums_too_late, "no longer sets _tr_loss .*; Trainer "
     "_inner_training_loop no longer sets _total_loss_scalar"),
    ("_inner_training_loop", None, "has no method _inner_training_loop any more, where _tr_loss is used"),
])
def test_a_transformers_release_without_an_internal_we_use_stops_at_start_up(monkeypatch, name, replacement, message):
    check_trainer_internals()  # this release has everything
    if replacement is None:
        monkeypatch.delattr(Trainer, name)
    else:
        monkeypatch.setattr(Trainer, name, replacement)
    with pytest.raises(RuntimeError, match=f"^transformers {re.escape(transformers.__version__)} .*{message}"):
        check_trainer_internals()


@pytest.mark.slow
def test_the_checks_run_when_a_trainer_is_built(tiny_cls_model, tmp_path, monkeypatch):
    monkeypatch.delattr(Trainer, "loss_is_scaled_for_ga")
    with pytest.raises(RuntimeError, match="loss_is_scaled_for_ga"):
        tiny_trainer(tiny_cls_model, tmp_path)


@pytest.mark.slow
def test_the_loss_sum_counts_this_runs_losses_once_training_began(tiny_cls_model, tmp_path):
    trainer = tiny_trainer(tiny_cls_model, tmp_path)
    record = LossSumRecord(trainer)
    record.resumed_sum = 2.0
    assert record.state()["attributes"]["loss_sum"] == 2.0  # TrainerState asks before the Trainer's sums exist
    trainer._total_loss_scalar, trainer._tr_loss = 3.0, torch.tensor(0.5)
    record.on_train_begin(trainer.args, trainer.state, trainer.control)
    assert record.state()["attributes"]["loss_sum"] == 5.5
    assert LossSumRecord().state()["attributes"]["loss_sum"] == 0.0  # the copy restored from a checkpoint
