"""core.trainer.BaseTrainer, the Trainer every script uses: atomic results for this run only, and evaluation
batches in dataset order whatever the training sampler."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset
from torch.utils.data import SequentialSampler
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, TrainingArguments

from qa_transfer.core.trainer import BaseTrainer, check_trainer_hooks


def tiny_trainer(model_dir, output_dir, **arguments) -> BaseTrainer:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    collator = DataCollatorWithPadding(AutoTokenizer.from_pretrained(model_dir))
    args = TrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True, **arguments)
    return BaseTrainer(model=model, args=args, data_collator=collator)


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
    ]  # fmt: skip  (no temporary file left)


def test_evaluation_keeps_file_order_when_training_groups_by_length(tiny_cls_model, tmp_path):
    trainer = tiny_trainer(tiny_cls_model, tmp_path, train_sampling_strategy="group_by_length",
                           per_device_eval_batch_size=2)  # fmt: skip
    lengths = [3, 9, 1, 7, 5, 2]
    dataset = Dataset.from_dict({"input_ids": [[5] * n for n in lengths], "labels": [0] * 6})
    assert isinstance(trainer._get_eval_sampler(dataset), SequentialSampler)
    order = [row["input_ids"].shape[-1] for row in trainer.get_test_dataloader(dataset)]
    assert order == [9, 7, 5]  # batches in file order, each padded to its longest row


def test_a_transformers_release_without_the_overridden_sampler_hook_stops_the_run(monkeypatch):
    from transformers import Trainer

    check_trainer_hooks()  # this release has it
    monkeypatch.delattr(Trainer, "_get_eval_sampler")
    with pytest.raises(RuntimeError, match="_get_eval_sampler"):
        check_trainer_hooks()
