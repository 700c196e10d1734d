"""What a new user meets first, on real processes: a model folder that is not there, the rerun of a finished run
(its files must stay byte for byte), Ctrl-C, the file modes of models and results under the umask, and what the
log shows."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from harness import TINY_RUN, run_script_main
from shared import REPO, SMALL_WINDOWS

import run_qa
from qa_transfer.core import packaged_models, scripts
from qa_transfer.core.errors import OutputDirError
from qa_transfer.core.trainer import whole_run_loss

QA_SAMPLE = REPO / "examples" / "qa_sample"
CLS_FIXTURES = REPO / "tests" / "fixtures" / "classification"
QUICK = [*TINY_RUN, "--seed", "3", "--logging_steps", "2", "--per_device_eval_batch_size", "4"]


def start(args: list, cwd: Path = REPO, umask: int | None = None) -> subprocess.Popen:
    """`python ARGS...` as a user's shell starts it: SIGINT at its default (a test runner may ignore it), the
    umask given."""
    def child_setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if umask is not None:
            os.umask(umask)

    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen([sys.executable, *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=child_setup)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=600)
    return process.returncode, stdout, stderr


def run(args: list, **options) -> tuple[int, str, str]:
    return finish(start(args, **options))


def qa_command(model: Path | str, out: Path, *extra: str) -> list:
    return [REPO / "run_qa.py", "--model_name_or_path", model, "--output_dir", out,
            "--train_file", QA_SAMPLE / "train.json", "--validation_file", QA_SAMPLE / "dev.json",
            "--do_train", "--do_eval", *QUICK, *SMALL_WINDOWS, *extra]


def cls_command(model: Path | str, out: Path, *extra: str) -> list:
    return [REPO / "run_classification.py", "--model_name_or_path", model, "--output_dir", out,
            "--train_file", CLS_FIXTURES / "train.csv", "--validation_file", CLS_FIXTURES / "validation.csv",
            "--class_names", "neutral,anti-vax,pro-vax", "--max_seq_length", "64", *QUICK, *extra]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under `folder`: its bytes, modification time and mode."""
    return {str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_mode & 0o777)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- A model that is not there ---------------------------------------------------------------------------------


def test_a_missing_model_is_one_error_line_under_every_script(tmp_path):
    (tmp_path / "out").mkdir()  # another run's folder exists; out/squad_v2 was never trained
    missing = "out/squad_v2"
    processes = {
        "run_qa": start(qa_command(missing, tmp_path / "qa"), cwd=tmp_path),
        "run_classification": start(cls_command("./models/cls", tmp_path / "cls"), cwd=tmp_path),
        "hub id offline": start(qa_command("no-such-org/no-such-model", tmp_path / "hub"), cwd=tmp_path),
        "cross_eval": start([REPO / "cross_eval.py", "--models", missing, "--datasets",
                             f"squad_v2={QA_SAMPLE / 'dev.json'}", "--output_dir", tmp_path / "matrix"], cwd=tmp_path),
        "fine_tune_all": start([REPO / "fine_tune_all.py", "--output_root", tmp_path / "models", "--launcher",
                                "python", "--model_name_or_path", missing, "--datasets", "squad_v2", "--train_file",
                                f"squad_v2={QA_SAMPLE / 'train.json'}", "--validation_file",
                                f"squad_v2={QA_SAMPLE / 'dev.json'}"], cwd=tmp_path),
    }
    results = {name: finish(process) for name, process in processes.items()}
    for name, (returncode, stdout, stderr) in results.items():
        assert returncode == 1, (name, stderr[-2000:])
        assert "Traceback" not in stdout + stderr and "internet" not in stdout + stderr, name
        assert len(error_lines(stderr)) == 1, (name, stderr[-2000:])
    assert error_lines(results["run_qa"][2]) == [
        f"error: {missing}: no such model folder; {packaged_models.WHAT_TO_PASS}"
    ]
    assert error_lines(results["run_classification"][2])[0].startswith("error: ./models/cls: no such model folder")
    assert "not in the hub cache while offline (HF_HUB_OFFLINE is set)" in results["hub id offline"][2]
    assert error_lines(results["cross_eval"][2]) == [f"error: --models {missing}: no such directory"]
    assert "[squad_v2] FAILED" in results["fine_tune_all"][1]
    assert not (tmp_path / "qa").exists() and not (tmp_path / "cls").exists()  # nothing written


# --- A finished run, run again; file modes; the log ------------------------------------------------------------


@pytest.mark.slow
def test_rerun_of_a_finished_qa_run_keeps_every_file_and_outputs_are_shared_under_umask_022(tiny_qa_model, tmp_path):
    out = tmp_path / "qa"
    command = qa_command(tiny_qa_model, out, "--max_steps", "6", "--save_steps", "2")
    returncode, stdout, stderr = run(command, umask=0o022)
    assert returncode == 0, stderr[-3000:]
    log = stdout + stderr
    # The log: one line for the arguments (kept in run_arguments.json), no config dumps.
    assert "TrainingArguments(" not in log and "Model config" not in log and "Do not forget" not in log
    assert f"arguments: {out / scripts.RUN_ARGUMENTS_FILE} (learning rate 5e-05, 6 steps" in log
    assert "Num examples = " in log and "42 questions" in log  # what a user needs stays
    assert stdout.rstrip().splitlines()[-1] == f"All results: {out / 'all_results.json'}"
    arguments = json.loads((out / scripts.RUN_ARGUMENTS_FILE).read_text())
    assert arguments["TrainingArguments"]["output_dir"] == str(out) and arguments["ModelArguments"]
    # One checkpoint kept (save_total_limit defaults to 1), beside the final model.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-6"]
    before = snapshot(out)
    assert {name: mode for name, (_, _, mode) in before.items()} == dict.fromkeys(before, 0o644)
    assert "model.safetensors" in before and "checkpoint-6/model.safetensors" in before

    returncode, stdout, stderr = run(command, umask=0o022)
    assert returncode == 0, stderr[-3000:]
    assert stdout.strip().splitlines()[-1].startswith(f"{out} holds this training, finished at step 6: nothing to do")
    assert "--overwrite_output_dir" in stdout and "Traceback" not in stderr
    assert snapshot(out) == before


@pytest.mark.slow
def test_rerun_of_a_finished_classifier_without_checkpoints_keeps_every_file_under_umask_027(tiny_qa_model,
                                                                                              tmp_path):
    out = tmp_path / "cls"
    # From a QA model's weights: the classifier head is new, the QA head unused (transformers' LOAD REPORT).
    command = cls_command(tiny_qa_model, out, "--max_steps", "4", "--save_strategy", "no")
    returncode, stdout, stderr = run(command, umask=0o027)
    assert returncode == 0, stderr[-3000:]
    log = stdout + stderr
    assert "LOAD REPORT" not in log
    assert re.search(r"BertForSequenceClassification loaded from \S+: weights \d+ missing, 2 unexpected "
                     r"\(--log_level info shows the table\)", log), log[-3000:]
    assert "Downloading and preparing" not in log and "Running Prediction" not in log
    assert "***** Running Evaluation *****" in log
    logged = [line for line in log.splitlines() if " - INFO - " in line or " - WARNING - " in line]
    assert len(logged) == len(set(logged)), "every line once"
    before = snapshot(out)
    assert {name: mode for name, (_, _, mode) in before.items()} == dict.fromkeys(before, 0o640)

    returncode, stdout, _ = run(command, umask=0o027)
    assert returncode == 0 and "finished at step 4: nothing to do" in stdout
    assert snapshot(out) == before
    # Asked for more steps, the run is not finished; with no checkpoint to go on from, the folder is in the way.
    returncode, _, stderr = run(cls_command(tiny_qa_model, out, "--max_steps", "6", "--save_strategy", "no"))
    assert returncode == 1 and error_lines(stderr)[0].startswith(f"error: --output_dir {out} already holds")
    assert snapshot(out) == before


# --- Ctrl-C --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_is_one_line_naming_the_checkpoint_and_the_command_and_the_run_resumes(tiny_qa_model, tmp_path,
                                                                                       caplog):
    out = tmp_path / "qa"
    command = qa_command(tiny_qa_model, out, "--max_steps", "40", "--save_steps", "2")
    process = start(command)
    deadline = time.monotonic() + 300
    while not any(scripts.checkpoint_is_complete(str(c)) for c in out.glob("checkpoint-*")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    returncode, _, stderr = finish(process)
    assert returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    kept = [c for c in scripts.list_checkpoints(str(out)) if scripts.checkpoint_is_complete(c)][-1]
    assert last_line == f"interrupted; kept {kept}, the same command resumes from it: " + shlex.join(
        ["python", *map(str, command)])
    # The same command, here in this process, resumes from that checkpoint and finishes.
    run_script_main(run_qa, command[1:], tiny=False)
    assert f"resuming from {kept}" in caplog.text
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 40


def interrupt_before_the_first_checkpoint(command: list, out: Path) -> str:
    """Start `command`, press Ctrl-C once training has begun (no checkpoint yet), again every 3 s until it stops
    (a KeyboardInterrupt that lands in a `__del__` is only printed, by Python); its last line, which must say that
    nothing was kept and print the command."""
    process = start(command)
    output: dict[str, list[str]] = {"stdout": [], "stderr": []}
    readers = [threading.Thread(target=lambda name=name: output[name].extend(iter(getattr(process, name).readline, "")))
               for name in output]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 300
    while not any("***** Running training *****" in line for line in list(output["stderr"])):
        assert process.poll() is None and time.monotonic() < deadline, "".join(output["stderr"])[-3000:]
        time.sleep(0.05)
    while process.poll() is None:
        # Again only while the interrupt has not been handled: on a loaded machine the exit after the message can
        # take longer than the wait, and a second Ctrl-C then would land in the interpreter's shutdown.
        if not any(line.startswith("interrupted;") for line in list(output["stderr"])):
            process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=3)
    for reader in readers:
        reader.join()
    stderr = "".join(output["stderr"])
    assert process.returncode == 130, stderr[-3000:]
    assert not scripts.list_checkpoints(str(out))
    last_line = stderr.strip().splitlines()[-1]
    assert last_line == f"interrupted; no checkpoint kept in {out}, the same command starts again: " + shlex.join(
        ["python", *map(str, command)])
    return last_line


@pytest.mark.slow
def test_ctrl_c_before_the_first_checkpoint_and_the_printed_command_trains(tiny_qa_model, tiny_cls_model, tmp_path):
    out = tmp_path / "qa"
    command = qa_command(tiny_qa_model, out, "--max_steps", "200", "--save_steps", "500")
    last_line = interrupt_before_the_first_checkpoint(command, out)
    # The printed command, as a user runs it, trains again from the start and finishes.
    printed = shlex.split(last_line.split(": ", 1)[1])
    assert printed[0] == "python"
    returncode, stdout, stderr = run(printed[1:])
    assert returncode == 0, stderr[-3000:]
    assert "stopped before its first checkpoint: starting again" in stdout + stderr
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 200
    # The classifier shares the rule.
    out = tmp_path / "cls"
    command = cls_command(tiny_cls_model, out, "--do_train", "--max_steps", "200", "--save_steps", "500")
    printed = shlex.split(interrupt_before_the_first_checkpoint(command, out).split(": ", 1)[1])
    returncode, stdout, stderr = run(printed[1:])
    assert returncode == 0, stderr[-3000:]
    assert (out / "train_results.json").is_file()


def test_a_folder_of_another_interrupted_run_still_needs_overwrite_output_dir(tmp_path):
    from transformers import TrainingArguments

    out = tmp_path / "run"
    out.mkdir()
    arguments = TrainingArguments(output_dir=str(out), do_train=True, report_to="none", learning_rate=1e-4)
    data = run_qa.DataTrainingArguments(train_file="a.json")
    scripts.save_run_arguments(arguments, data)
    other = TrainingArguments(output_dir=str(out), do_train=True, report_to="none", learning_rate=2e-4)
    with pytest.raises(OutputDirError, match=r"other arguments \(TrainingArguments.learning_rate\)"):
        scripts.detect_last_checkpoint(other, False, data)
    with pytest.raises(OutputDirError, match=r"other arguments \(DataTrainingArguments.train_file\)"):
        scripts.detect_last_checkpoint(arguments, False, run_qa.DataTrainingArguments(train_file="b.json"))
    # The same arguments, --overwrite_output_dir added or not, start again; a finished run's files stay in the way.
    (out / "all_results.json").write_text("{}")
    with pytest.raises(OutputDirError, match="already holds"):
        scripts.detect_last_checkpoint(arguments, False, data)
    (out / "all_results.json").unlink()
    data_overwriting = run_qa.DataTrainingArguments(train_file="a.json", overwrite_output_dir=True)
    assert scripts.detect_last_checkpoint(arguments, False, data_overwriting) is None


def test_the_training_loss_of_a_resumed_run_covers_every_step():
    history = [{"loss": 4.0, "step": 2}, {"eval_loss": 9.0, "step": 2}, {"loss": 2.0, "step": 4},
               {"loss": 1.0, "step": 6}]  # resumed at step 4: the step-6 entry is the resumed run's own
    assert whole_run_loss(history, resumed_at=4, last_step=8, resumed_loss=1.5) == (3.0 * 4 + 1.5 * 4) / 8
    assert whole_run_loss(history, resumed_at=4, last_step=4, resumed_loss=0.0) == 3.0  # nothing left to train
    assert whole_run_loss([{"loss": 4.0, "step": 10}], resumed_at=4, last_step=8, resumed_loss=1.5) is None
