"""precision: --bf16 on a machine without a GPU means CPU autocast where the CPU has bf16 instructions, and one
clear error where it has not; the output head stays in fp32 under mixed precision; the precision is named in
the results."""

import pytest
import torch
from harness import run_script_subprocess
from shared import REPO
from transformers import AutoModelForQuestionAnswering, TrainingArguments

from qa_transfer.core import arguments, precision
from qa_transfer.core.arguments import ScriptArgumentParser, parse_args_with_config
from qa_transfer.core.errors import ArgumentError
from qa_transfer.core.precision import cpu_bf16_instructions, keep_head_in_fp32, precision_name


def parser() -> ScriptArgumentParser:
    return ScriptArgumentParser((TrainingArguments,), description="A toy script.")


@pytest.mark.parametrize("flags_line, expected", [
    ("flags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni", "avx512_bf16"),
    ("flags\t\t: fpu avx512f amx_tile amx_bf16 avx512_bf16", "amx_bf16"),
    ("Features\t: fp asimd bf16 i8mm", "bf16"),
    ("flags\t\t: fpu sse avx2 avx512f", None),
])
def test_cpu_bf16_instructions_read_from_cpuinfo(tmp_path, flags_line, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\n{flags_line}\n\nprocessor\t: 1\n{flags_line}\n")
    assert cpu_bf16_instructions(str(cpuinfo)) == expected


@pytest.mark.parametrize("flags", [["--bf16"], ["--bf16", "true"], ["--bf16_full_eval"]])
def test_bf16_without_a_gpu_turns_on_cpu_autocast(monkeypatch, flags):
    monkeypatch.setattr(arguments, "has_accelerator", lambda: False)
    monkeypatch.setattr(arguments, "cpu_bf16_instructions", lambda: "avx512_bf16")
    (args,) = parse_args_with_config(parser(), ["--output_dir", "out", *flags])
    assert args.use_cpu is True
    assert precision_name(args) == ("bf16 (CPU autocast)" if flags[0] == "--bf16" else "fp32 (evaluation in bf16)")


def test_without_bf16_nothing_changes(monkeypatch):
    monkeypatch.setattr(arguments, "has_accelerator", lambda: False)
    (args,) = parse_args_with_config(parser(), ["--output_dir", "out"])
    assert args.use_cpu is False and precision_name(args) == "fp32"
    (args,) = parse_args_with_config(parser(), ["--output_dir", "out", "--bf16", "false"])
    assert args.use_cpu is False and precision_name(args) == "fp32"


def test_bf16_from_a_config_file_counts_too(monkeypatch, tmp_path):
    monkeypatch.setattr(arguments, "has_accelerator", lambda: False)
    monkeypatch.setattr(arguments, "cpu_bf16_instructions", lambda: "amx_bf16")
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nbf16: true\n")
    (args,) = parse_args_with_config(parser(), [str(config)])
    assert args.bf16 and args.use_cpu


@pytest.mark.parametrize("accelerator, flags", [(False, ["--bf16"]), (True, ["--bf16", "--use_cpu"])])
def test_bf16_on_a_cpu_without_bf16_instructions_is_one_clear_error(monkeypatch, accelerator, flags):
    monkeypatch.setattr(arguments, "has_accelerator", lambda: accelerator)
    monkeypatch.setattr(arguments, "cpu_bf16_instructions", lambda: None)
    with pytest.raises(ArgumentError, match="this CPU has no bf16 instructions .* leave --bf16 out"):
        parse_args_with_config(parser(), ["--output_dir", "out", *flags])


def test_with_a_gpu_bf16_is_left_to_the_trainer():
    namespace = type("Namespace", (), {"bf16": True, "bf16_full_eval": False, "use_cpu": False})()
    assert precision.cpu_bf16_request(namespace, has_accelerator=True, instructions=None) is False


@pytest.mark.slow
def test_the_head_runs_in_fp32_under_bf16_autocast(tiny_qa_model):
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_qa_model)
    keep_head_in_fp32(model, TrainingArguments(output_dir="unused", bf16=True, use_cpu=True))
    names_before = list(model.state_dict())
    inputs = {"input_ids": torch.tensor([[2, 5, 6, 3, 7, 8, 3]]), "attention_mask": torch.ones(1, 7, dtype=torch.long)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(**inputs, start_positions=torch.tensor([4]), end_positions=torch.tensor([5]))
    assert output.start_logits.dtype == torch.float32 and output.end_logits.dtype == torch.float32
    assert output.loss.dtype == torch.float32
    assert list(model.state_dict()) == names_before, "checkpoints keep the same weight names"

    plain = AutoModelForQuestionAnswering.from_pretrained(tiny_qa_model)
    keep_head_in_fp32(plain, TrainingArguments(output_dir="unused"))  # fp32: nothing to do
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert plain(**inputs).start_logits.dtype == torch.bfloat16


@pytest.mark.slow
@pytest.mark.skipif(cpu_bf16_instructions() is None, reason="this CPU has no bf16 instructions")
def test_run_qa_trains_with_bf16_on_this_cpu(tiny_qa_model, tmp_path):
    """The whole script, as a user runs it: --bf16 alone, no --use_cpu, no GPU."""
    if torch.accelerator.is_available():
        pytest.skip("a GPU is present: --bf16 is the Trainer's own")
    fixtures = f"{REPO}/examples/qa_sample"
    out = tmp_path / "out"
    result = run_script_subprocess("run_qa.py", [
        "--model_name_or_path", tiny_qa_model, "--train_file", f"{fixtures}/train.json",
        "--validation_file", f"{fixtures}/dev.json", "--do_train", "--do_eval", "--max_steps", "2",
        "--max_seq_length", "128", "--doc_stride", "32", "--save_strategy", "no", "--bf16", "--output_dir", out,
    ], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "precision: bf16 (CPU autocast)" in result.stdout + result.stderr
    import json

    results = json.loads((out / "all_results.json").read_text())
    assert results["train_precision"] == results["eval_precision"] == "bf16 (CPU autocast)"
    assert json.loads((out / "qa_run_info.json").read_text())["training"]["precision"] == "bf16 (CPU autocast)"
