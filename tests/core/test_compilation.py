"""--torch_compile on a CPU: batches padded to a few lengths, each compiled once, and a plain run with one log line
where this machine cannot compile."""

import json
import logging

import pytest
import torch
from harness import run_script_main
from shared import REPO, SMALL_WINDOWS
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, TrainerCallback, TrainingArguments

import cross_eval
import run_classification
import run_qa
from qa_transfer.core.compilation import COMPILE_PAD_MULTIPLE, check_torch_compile, compile_failure, padding_multiple
from qa_transfer.core.precision import cpu_bf16_instructions
from qa_transfer.qa.data import load_qa_file
from qa_transfer.qa.training import QATrainer, qa_trainer
from qa_transfer.qa.windows import WindowConfig, build_windows, model_inputs

SAMPLE = REPO / "examples" / "qa_sample"
# bf16 where this CPU has the instructions (the case --torch_compile is for), fp32 elsewhere
PRECISION = ["--bf16"] if cpu_bf16_instructions() else []


def compiled_graphs() -> int:
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def fresh_compiler() -> None:
    """Dynamo's caches and graph count emptied, after the (cached) probe of check_torch_compile has run: the
    graphs counted from here on are the model's."""
    compile_failure("inductor", None)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()


def test_batches_are_padded_to_a_multiple_of_64_only_under_torch_compile(tmp_path):
    plain = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert padding_multiple(plain, 8) == 8 and padding_multiple(plain, None) is None
    compiled = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                 torch_compile_backend="eager")
    assert compiled.torch_compile and padding_multiple(compiled, 8) == COMPILE_PAD_MULTIPLE == 64


def test_a_backend_that_fails_gives_one_log_line_and_a_plain_run(tmp_path, caplog):
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                             torch_compile_backend="no_such_backend", torch_compile_mode="default")
    compile_failure.cache_clear()
    with caplog.at_level(logging.WARNING, logger="qa_transfer"):
        assert check_torch_compile(args) is False
    records = [record for record in caplog.records if record.name.startswith("qa_transfer")]
    assert len(records) == 1 and records[0].exc_info is None
    message = records[0].getMessage()
    assert "\n" not in message and "no_such_backend" in message and "running without it" in message
    assert (args.torch_compile, args.torch_compile_backend, args.torch_compile_mode) == (False, None, None)
    assert padding_multiple(args, 8) == 8  # nothing left to compile: the usual padding


class GraphCount(TrainerCallback):
    """The number of compiled graphs at the end of every training step."""

    def __init__(self):
        self.after_step: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.after_step.append(compiled_graphs())


class ShapeRecorder:
    def __init__(self, collator):
        self.collator, self.shapes = collator, []

    def __call__(self, features):
        batch = self.collator(features)
        self.shapes.append(tuple(batch["input_ids"].shape))
        return batch


@pytest.mark.slow
def test_a_seen_shape_does_not_compile_again_in_training_or_evaluation(tiny_qa_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_qa_model)
    examples = load_qa_file(str(SAMPLE / "train.json"))
    # 192-token windows, one a batch: a context's last window is often shorter, so batches of 128 and 192 tokens
    windows = build_windows(examples, tokenizer, WindowConfig(192, 64, 16), with_labels=True,
                            with_postprocess_columns=False)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", torch_compile=True,
                             bf16=bool(PRECISION), per_device_train_batch_size=1, per_device_eval_batch_size=2,
                             max_steps=16, save_strategy="no", logging_strategy="no", disable_tqdm=True,
                             dataloader_pin_memory=False, train_sampling_strategy="random", seed=1)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_qa_model)
    fresh_compiler()
    counts = GraphCount()
    trainer = qa_trainer(model, tokenizer, args, False, QATrainer, train_dataset=windows,
                         eval_dataset=model_inputs(windows.select(range(8))), callbacks=[counts])
    recorder = trainer.data_collator = ShapeRecorder(trainer.data_collator)
    assert compiled_graphs() == 0
    trainer.train()
    shapes = recorder.shapes[:args.max_steps]
    assert {length for _, length in shapes} <= {64, 128, 192}, shapes
    assert len(set(shapes)) >= 2, "the fixture must give batches of two lengths"
    assert counts.after_step[0] > 0, "the first step compiles"
    for step in range(1, args.max_steps):
        if shapes[step] in shapes[:step]:
            assert counts.after_step[step] == counts.after_step[step - 1], (step, shapes, counts.after_step)
    assert counts.after_step[-1] <= 2 * len(set(shapes))  # a few compilations, not one a batch
    first = trainer.evaluate()
    after_first = compiled_graphs()
    second = trainer.evaluate()
    assert compiled_graphs() == after_first, "evaluating the same batches again compiles nothing"
    assert first["eval_loss"] == pytest.approx(second["eval_loss"])


@pytest.fixture(scope="module")
def compiled_qa_run(tiny_qa_model, tmp_path_factory):
    """run_qa.py trains and evaluates with --torch_compile (and --bf16 on a CPU that has it)."""
    models = tmp_path_factory.mktemp("compiled_models")
    fresh_compiler()
    run_script_main(run_qa, [
        "--model_name_or_path", tiny_qa_model, "--output_dir", models / "squad_v2",
        "--train_file", SAMPLE / "train.json", "--validation_file", SAMPLE / "dev.json", "--do_train", "--do_eval",
        "--max_steps", "4", "--per_device_eval_batch_size", "8", "--save_strategy", "no", "--torch_compile",
        *PRECISION, *SMALL_WINDOWS])
    return models, compiled_graphs()


@pytest.mark.slow
def test_run_qa_compiles_trains_and_evaluates(compiled_qa_run):
    models, graphs = compiled_qa_run
    results = json.loads((models / "squad_v2" / "all_results.json").read_text())
    assert graphs > 0 and results["train_runtime"] > 0 and "eval_f1" in results
    assert results["eval_precision"] == ("bf16 (CPU autocast)" if PRECISION else "fp32")


@pytest.mark.slow
def test_cross_eval_compiles_and_scores(compiled_qa_run, tmp_path):
    models, _ = compiled_qa_run
    fresh_compiler()
    assert run_script_main(cross_eval, [
        "--models", models, "--output_dir", tmp_path / "matrix",
        "--per_device_eval_batch_size", "8", "--datasets", f"squad_v2={SAMPLE / 'dev.json'}", "--torch_compile",
        *PRECISION, *SMALL_WINDOWS]) == 0
    assert compiled_graphs() > 0
    assert any((tmp_path / "matrix").rglob("*.json"))


@pytest.mark.slow
def test_run_classification_compiles_trains_and_evaluates(tiny_cls_model, tmp_path):
    fixtures = REPO / "tests" / "fixtures" / "classification"
    fresh_compiler()
    run_script_main(run_classification, [
        "--model_name_or_path", tiny_cls_model, "--output_dir", tmp_path / "out",
        "--train_file", fixtures / "train.csv", "--validation_file", fixtures / "validation.csv",
        "--class_names", "neutral,anti-vax,pro-vax", "--max_steps", "3", "--max_seq_length", "64",
        "--save_strategy", "no", "--torch_compile", *PRECISION])
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert compiled_graphs() > 0 and "eval_accuracy" in results
