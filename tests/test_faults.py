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
from pathlib import Path

import pytest
import torch

import cross_eval
import fine_tune_all
import qa_adapters
import run_classification
import run_qa
import script_utils
from plots import save_png
from qa_sources.common import OfficialSource
from results_io import ResultsWriteError, write_json_atomic

REPO = Path(__file__).resolve().parent.parent
KILLPOINT = Path(__file__).resolve().parent / "killpoint.py"
QA_SAMPLE = REPO / "examples" / "qa_sample"
NEWS_SAMPLE = REPO / "examples" / "news_sample"
CLS_FIXTURES = Path(__file__).parent / "fixtures" / "classification"
SMALL_WINDOWS = ["--max_seq_length", "64", "--doc_stride", "16", "--max_query_length", "16"]
# Eight steps, a checkpoint every two: killed while writing the third (step 6), a run resumes from step 4.
STEPS = ["--max_steps", "8", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "2",
         "--learning_rate", "1e-3", "--per_device_train_batch_size", "8", "--seed", "5", "--report_to", "none",
         "--disable_tqdm", "true", "--dataloader_pin_memory", "false"]


def run_killed(command: list, killpoint: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `command` in a session of its own with KILLPOINT set; it must die by SIGKILL."""
    env = {**os.environ, "KILLPOINT": killpoint, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run([str(part) for part in command], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)
    assert done.returncode == -signal.SIGKILL, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def checkpoint_steps(output_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in output_dir.glob("checkpoint-*"))


# --- Resuming a killed training -----------------------------------------------------------------------------


def test_killed_classifier_resumes_and_ends_as_an_uninterrupted_run(tiny_cls_model, tmp_path, caplog):
    def command(output_dir: Path) -> list[str]:
        return ["--model_name_or_path", str(tiny_cls_model), "--train_file", str(CLS_FIXTURES / "train.csv"),
                "--validation_file", str(CLS_FIXTURES / "validation.csv"),
                "--test_file", str(CLS_FIXTURES / "test_unlabelled.csv"), "--output_dir", str(output_dir),
                "--label_names", "neutral,anti-vax,pro-vax", "--max_seq_length", "64", "--eval_strategy", "no",
                *STEPS]

    reference = tmp_path / "uninterrupted"
    run_classification.main(command(reference))

    killed = tmp_path / "killed"
    run_killed([sys.executable, KILLPOINT, REPO / "run_classification.py", *command(killed)], "checkpoint:3")
    assert checkpoint_steps(killed) == [2, 4, 6]
    assert not script_utils.checkpoint_is_complete(str(killed / "checkpoint-6"))  # killed mid-save

    caplog.clear()
    run_classification.main(command(killed))  # the same command again
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resuming from")]
    assert resumed == [f"resuming from {killed / 'checkpoint-4'}"]
    assert (killed / "predictions.csv").read_text() == (reference / "predictions.csv").read_text()
    for key in ("eval_loss", "eval_accuracy", "eval_f1_macro"):
        assert json.loads((killed / "eval_results.json").read_text())[key] == \
            json.loads((reference / "eval_results.json").read_text())[key], key
    assert json.loads((killed / "trainer_state.json").read_text())["global_step"] == 8
