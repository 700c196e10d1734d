"""Faults: runs killed with SIGKILL (tests/killpoint.py) and restarted end where uninterrupted runs end; killed
writes leave nothing that a later run reads; a full disk leaves the previous results intact.

The killed runs are real processes; the uninterrupted references and most restarts run in this process (the
same code and arguments, one torch thread count for all), which keeps the file short on a small CPU."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from harness import TINY_RUN, run_script_main
from shared import CONVERSION_SOURCE, REPO, SMALL_WINDOWS, numbered_record

import cross_eval
import fine_tune_all
import run_classification
import run_qa
from qa_transfer.core import scripts
from qa_transfer.core.errors import OutputDirError, ResultsWriteError
from qa_transfer.core.plots import save_png
from qa_transfer.core.results_io import write_json_atomic
from qa_transfer.sources import adapters

pytestmark = pytest.mark.faults

KILLPOINT = REPO / "tests" / "killpoint.py"
QA_SAMPLE = REPO / "examples" / "qa_sample"
NEWS_SAMPLE = REPO / "examples" / "news_sample"
CLS_FIXTURES = REPO / "tests" / "fixtures" / "classification"
# Eight steps, a checkpoint every two: killed while writing the third (step 6), a run resumes from step 4.
STEPS = [*TINY_RUN, "--max_steps", "8", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "2",
         "--learning_rate", "1e-3", "--seed", "5"]


def start_killed(command: list, killpoint: str, log: Path) -> subprocess.Popen:
    """Start `command` in a session of its own with KILLPOINT set, its output into `log`; the tests do other work
    (the uninterrupted reference runs) while it runs."""
    env = {**os.environ, "KILLPOINT": killpoint, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    with open(log, "w") as handle:
        return subprocess.Popen([str(part) for part in command], cwd=REPO, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def expect_killed(process: subprocess.Popen, log: Path, timeout: int = 600) -> str:
    """Wait for a process started by start_killed, which must die by SIGKILL; its output."""
    try:
        returncode = process.wait(timeout=timeout)
    finally:
        process.kill()
    output = log.read_text()
    assert returncode == -signal.SIGKILL, output[-3000:]
    return output


def run_killed(command: list, killpoint: str, log: Path) -> str:
    return expect_killed(start_killed(command, killpoint, log), log)


def checkpoint_steps(output_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in output_dir.glob("checkpoint-*"))


# --- Resuming a killed training -----------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_classifier_resumes_and_ends_as_an_uninterrupted_run(tiny_cls_model, tmp_path, caplog):
    def command(output_dir: Path) -> list[str]:
        return ["--model_name_or_path", str(tiny_cls_model), "--train_file", str(CLS_FIXTURES / "train.csv"),
                "--validation_file", str(CLS_FIXTURES / "validation.csv"),
                "--test_file", str(CLS_FIXTURES / "test_unlabelled.csv"), "--output_dir", str(output_dir),
                "--class_names", "neutral,anti-vax,pro-vax", "--max_seq_length", "64", "--eval_strategy", "no",
                *STEPS]

    killed, log = tmp_path / "killed", tmp_path / "killed.log"
    process = start_killed([sys.executable, KILLPOINT, REPO / "run_classification.py", *command(killed)],
                           "checkpoint:3", log)
    reference = tmp_path / "uninterrupted"
    run_script_main(run_classification, command(reference), tiny=False)
    expect_killed(process, log)
    assert checkpoint_steps(killed) == [4, 6]  # the default --save_total_limit 1 had removed checkpoint-2
    assert not scripts.checkpoint_is_complete(str(killed / "checkpoint-6"))  # killed mid-save

    caplog.clear()
    run_script_main(run_classification, command(killed), tiny=False)  # the same command again
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resuming from")]
    assert resumed == [f"resuming from {killed / 'checkpoint-4'}"]
    assert (killed / "predictions.csv").read_text() == (reference / "predictions.csv").read_text()
    for key in ("eval_loss", "eval_accuracy", "eval_f1_macro"):
        assert json.loads((killed / "eval_results.json").read_text())[key] == \
            json.loads((reference / "eval_results.json").read_text())[key], key
    assert json.loads((killed / "trainer_state.json").read_text())["global_step"] == 8
    # The training loss is the whole run's (the resumed steps' alone would be the mean of steps 5-8).
    assert json.loads((killed / "train_results.json").read_text())["train_loss"] == pytest.approx(
        json.loads((reference / "train_results.json").read_text())["train_loss"], rel=1e-6)


@pytest.mark.slow
def test_fine_tune_all_killed_inside_and_between_datasets_ends_as_an_uninterrupted_run(
    tiny_qa_model, tmp_path, monkeypatch
):
    datasets_args = ["--datasets", "squad_v2", "newsqa",
                     "--train_file", f"squad_v2={QA_SAMPLE / 'train.json'}", f"newsqa={NEWS_SAMPLE / 'train.jsonl'}",
                     "--validation_file", f"squad_v2={QA_SAMPLE / 'dev.json'}", f"newsqa={NEWS_SAMPLE / 'dev.jsonl'}"]
    extra = [*STEPS, *SMALL_WINDOWS, "--per_device_eval_batch_size", "4"]
    root = tmp_path / "models"
    argv = [REPO / "fine_tune_all.py", "--output_root", root, "--model_name_or_path", tiny_qa_model,
            "--launcher", f"{sys.executable} {KILLPOINT}", *datasets_args, "--", *extra]

    # Killed inside the first dataset, while its third checkpoint is being written...
    log = tmp_path / "fine_tune_all.log"
    process = start_killed([sys.executable, *argv], "checkpoint:3", log)

    # ... meanwhile the uninterrupted runs: run_qa.py with the arguments fine_tune_all.py gives it, in this process.
    args = fine_tune_all.argparse.Namespace(
        launcher="python", model_name_or_path=str(tiny_qa_model), data_dir={}, overwrite=False,
        train_file={"squad_v2": str(QA_SAMPLE / "train.json"), "newsqa": str(NEWS_SAMPLE / "train.jsonl")},
        validation_file={"squad_v2": str(QA_SAMPLE / "dev.json"), "newsqa": str(NEWS_SAMPLE / "dev.jsonl")})
    for name in ("squad_v2", "newsqa"):
        command = fine_tune_all.run_qa_command(args, name, str(tmp_path / "reference" / name), extra)
        run_script_main(run_qa, command[2:], tiny=False)

    expect_killed(process, log)
    assert checkpoint_steps(root / "squad_v2") == [4, 6]  # --save_total_limit 1 had removed checkpoint-2
    assert not (root / "newsqa").exists()

    # Killed between the datasets: the first resumes and finishes, the second is killed before it starts.
    output = run_killed([sys.executable, *argv], "start:newsqa", log)
    assert f"deleting {root / 'squad_v2' / 'checkpoint-6'} (incomplete, killed while saving)" in output
    assert f"resuming from {root / 'squad_v2' / 'checkpoint-4'}" in output
    assert (root / "squad_v2" / run_qa.RUN_INFO_FILE).is_file() and not (root / "newsqa").exists()

    # The same command once more, uninterrupted (here fine_tune_all.py runs in this process): only newsqa is left.
    monkeypatch.delenv("KILLPOINT", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    assert run_script_main(fine_tune_all, argv[1:], tiny=False) == 0
    for name in ("squad_v2", "newsqa"):
        state = json.loads((root / name / "trainer_state.json").read_text())
        assert state["global_step"] == 8, name
        # The answers, and where the model may abstain (squad_v2) its null scores, to the last bit.
        for result in ("eval_predictions.json", "eval_null_odds.json"):
            reference = tmp_path / "reference" / name / result
            if reference.exists():
                assert json.loads((root / name / result).read_text()) == json.loads(reference.read_text()), result
        assert json.loads((root / name / "eval_results.json").read_text())["eval_loss"] == \
            json.loads((tmp_path / "reference" / name / "eval_results.json").read_text())["eval_loss"], name


# --- The output folder ----------------------------------------------------------------------------------------


def training_args(output_dir: Path, **kwargs):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(output_dir), **{"do_train": True, "report_to": "none", **kwargs})


@pytest.mark.slow
def test_a_folder_with_results_but_no_checkpoint_is_not_overwritten(tmp_path, tiny_qa_model, monkeypatch):
    out = tmp_path / "finished"
    out.mkdir()
    (out / "all_results.json").write_text("{}")
    (out / ".all_results.json.x1.tmp").write_text("{")  # a killed atomic write: hidden, ignored
    with pytest.raises(OutputDirError, match="--overwrite_output_dir") as error:
        scripts.detect_last_checkpoint(training_args(out), overwrite_output_dir=False)
    assert str(out) in str(error.value) and "all_results.json" in str(error.value)
    # The scripts turn it into one error line and exit, before reading any data.
    with pytest.raises(OutputDirError, match=f"^--output_dir {out} already holds"):
        run_script_main(run_qa, ["--model_name_or_path", tiny_qa_model, "--output_dir", out, "--train_file",
                                 "missing.json", "--do_train"], tiny=False)
    # Opting out starts from scratch and deletes the checkpoints that a later resume would otherwise pick up.
    (out / "checkpoint-3").mkdir()
    (out / "checkpoint-3" / "trainer_state.json").write_text("{}")
    assert scripts.detect_last_checkpoint(training_args(out), overwrite_output_dir=True) is None
    assert not (out / "checkpoint-3").exists()
    # An empty folder, or one that a run killed before its first checkpoint left, just starts.
    (tmp_path / "empty").mkdir()
    assert scripts.detect_last_checkpoint(training_args(tmp_path / "empty"), False) is None
    assert scripts.detect_last_checkpoint(training_args(tmp_path / "absent"), False) is None


def test_the_last_complete_checkpoint_wins_and_half_written_ones_go(tmp_path):
    out = tmp_path / "run"
    for step, state in ((2, "{}"), (10, "{}"), (12, '{"global_st'), (14, None)):
        (out / f"checkpoint-{step}").mkdir(parents=True)
        if state is not None:
            (out / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (out / "config.json").write_text("{}")
    assert scripts.detect_last_checkpoint(training_args(out), False) == str(out / "checkpoint-10")
    assert checkpoint_steps(out) == [2, 10]
    assert scripts.detect_last_checkpoint(training_args(out, resume_from_checkpoint="latest"), False) == \
        str(out / "checkpoint-10")
    explicit = str(tmp_path / "elsewhere" / "checkpoint-1")
    assert scripts.detect_last_checkpoint(training_args(out, resume_from_checkpoint=explicit), False) == explicit
    assert scripts.detect_last_checkpoint(training_args(out, do_train=False), False) is None
    with pytest.raises(OutputDirError, match="no complete checkpoint"):
        scripts.detect_last_checkpoint(training_args(tmp_path / "none", resume_from_checkpoint="true"), False)


# --- Killed writes ---------------------------------------------------------------------------------------------


KILLED_CONVERSION = """
import sys, time
from pathlib import Path
from qa_transfer.sources.adapters import cached_conversion
from shared import CONVERSION_SOURCE, numbered_record

def records(stats):
    for index in range(1500):  # the first 1,000 reach the Arrow file being written
        yield numbered_record(index)
    Path(sys.argv[2]).touch()
    time.sleep(600)

cached_conversion(CONVERSION_SOURCE, {"file": "x"}, records, sys.argv[1], "killed conversion")
"""


def test_a_conversion_killed_while_writing_its_cache_is_converted_again(tmp_path):
    cache_dir, marker = tmp_path / "cache", tmp_path / "writing"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    process = subprocess.Popen([sys.executable, "-c", KILLED_CONVERSION, str(cache_dir), str(marker)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):
            if marker.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), process.communicate()[0].decode()[-3000:]
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert list(cache_dir.rglob("*.incomplete")), "the conversion was killed while writing its cache"

    generated = []

    def records(stats):
        for index in range(2000):
            generated.append(index)
            yield numbered_record(index)

    dataset, _ = adapters.cached_conversion(CONVERSION_SOURCE, {"file": "x"}, records, str(cache_dir), "again")
    assert len(generated) == 2000 and len(dataset) == 2000 and dataset[1999]["id"] == "q1999"
    generated.clear()
    again, _ = adapters.cached_conversion(CONVERSION_SOURCE, {"file": "x"}, records, str(cache_dir), "reuse")
    assert generated == [] and len(again) == 2000  # complete now: reused


@pytest.mark.slow
def test_a_cross_eval_cell_killed_while_writing_is_computed_again(tiny_qa_model, tmp_path, monkeypatch):
    out = tmp_path / "cross_eval"
    argv = [*TINY_RUN, "--models", tiny_qa_model, "--output_dir", out, "--per_device_eval_batch_size", "4",
            *SMALL_WINDOWS, "--datasets", f"squad_v2={QA_SAMPLE / 'dev.json'}"]
    run_killed([sys.executable, KILLPOINT, REPO / "cross_eval.py", *argv], "replace:metrics.json",
               tmp_path / "cross_eval.log")
    cell = out / "cells" / tiny_qa_model.name / "squad_v2"
    assert (cell / "eval_predictions.json").is_file() and not (cell / "metrics.json").exists()
    assert list(cell.glob(".metrics.json.*.tmp")), "killed with the whole temporary file written, before the rename"

    def rerun() -> dict:
        assert run_script_main(cross_eval, argv, tiny=False) == 0
        return json.loads((cell / "metrics.json").read_text())

    first = rerun()
    assert first["metrics"]["samples"] == 14
    # A metrics.json cut short (by anything but our writer) is not read either: the cell is computed again.
    text = (cell / "metrics.json").read_text()
    (cell / "metrics.json").write_text(text[: len(text) // 2])
    second = rerun()
    assert {key: second["metrics"][key] for key in ("exact", "f1", "total", "HasAns_f1", "NoAns_f1", "loss")} == \
        {key: first["metrics"][key] for key in ("exact", "f1", "total", "HasAns_f1", "NoAns_f1", "loss")}


# --- A full disk -----------------------------------------------------------------------------------------------


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.slow
def test_a_full_disk_fails_with_one_error_and_keeps_the_previous_results(tiny_cls_model, tmp_path, monkeypatch):
    out = tmp_path / "results"
    argv = ["--model_name_or_path", tiny_cls_model, "--validation_file", CLS_FIXTURES / "validation.csv",
            "--class_names", "neutral,anti-vax,pro-vax", "--output_dir", out, "--max_seq_length", "64"]
    run_script_main(run_classification, argv)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert {"run_arguments.json", "eval_results.json", "all_results.json", "roc_curves.png"} <= set(before)

    # The disk fills up: the data cannot be flushed (where delayed allocation reports it).
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(ResultsWriteError) as error:
        run_script_main(run_classification, argv)
    # The first file a run writes is its arguments.
    assert str(error.value) == (f"could not write {out / 'run_arguments.json'}: No space left on device "
                                "(the previous run_arguments.json is unchanged)")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no temporary file left either


def test_a_png_that_cannot_be_written_leaves_the_previous_one(tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = tmp_path / "plot.png"
    save_png(Figure(), path)
    before = path.read_bytes()

    def half_then_full(self, handle, **kwargs):
        handle.write(before[:100])
        no_space()

    monkeypatch.setattr(FigureCanvasAgg, "print_png", half_then_full)
    with pytest.raises(ResultsWriteError, match=f"could not write {path}: No space left on device"):
        save_png(Figure(), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["plot.png"]


FILE_SIZE_LIMITED_WRITE = """
import resource, signal, sys
from qa_transfer.core.errors import ResultsWriteError
from qa_transfer.core.results_io import write_json_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_json_atomic(sys.argv[1], {"text": "x" * 100_000})
except ResultsWriteError as err:
    sys.exit(f"error: {err}")
"""


def test_a_write_the_kernel_refuses_keeps_the_previous_file(tmp_path):
    path = tmp_path / "all_results.json"
    write_json_atomic(path, {"f1": 50.0})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual mode, not the temporary file's private one
    done = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMITED_WRITE, str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 1
    assert done.stderr.strip() == (f"error: could not write {path}: File too large "
                                   "(the previous all_results.json is unchanged)")
    assert json.loads(path.read_text()) == {"f1": 50.0} and os.listdir(tmp_path) == ["all_results.json"]
