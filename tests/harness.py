"""Running a script in the tests, one way each: in this process (`run_script_main`) or as a process of its own
(`run_script_subprocess`), with the flags that keep a run of a tiny model short and quiet (TINY_RUN).

    run_script_main(run_qa, ["--model_name_or_path", model, "--output_dir", out, ..., "--max_steps", "6"])
    done = run_script_subprocess("run_classification.py", [...], tiny=False, cwd=tmp_path)

TINY_RUN holds only what every tiny run shares and what changes no result: no tracking integration, no progress
bars, no pinned memory (the CPU default), the Trainer's default training batch of 8. What a test's outcome rests on
(the seed, the steps or epochs, the evaluation batch, the checkpoints) it passes itself.

TINY_RUN comes first, so a flag the test passes overrides it: the parsers (HfArgumentParser, argparse) keep the
last value given for a flag, `--max_steps 2 ... --max_steps 6` runs 6 steps. A config file must be the first
argument, so it stays first and TINY_RUN follows it: TINY_RUN then overrides the config file's values of the same
flags, so a run whose config file sets them passes `tiny=False`. Only the Trainer scripts (run_qa.py,
run_classification.py, cross_eval.py) take these flags; the others run with `tiny=False`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from unittest import mock

from shared import REPO

TINY_RUN = ["--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
            "--per_device_train_batch_size", "8"]


def script_arguments(args: list, tiny: bool = True) -> list[str]:
    """`args` as strings, with TINY_RUN after a leading config file (when `tiny`)."""
    args = [str(arg) for arg in args]
    if not tiny:
        return args
    config = args[:1] if args and not args[0].startswith("-") else []
    return [*config, *TINY_RUN, *args[len(config):]]


def run_script_main(module: ModuleType, args: list, tiny: bool = True) -> int | None:
    """`module.main(args)` (the arguments as strings, TINY_RUN added when `tiny`), with sys.argv as the command
    line would set it (the program name is the script's, as in its --help and its Ctrl-C line); main's return
    value (cross_eval.py's and fine_tune_all.py's exit status; None for the others). Exceptions propagate:
    `qa_transfer.core.scripts.run_script` is what turns them into an exit status."""
    argv = script_arguments(args, tiny)
    with mock.patch.object(sys, "argv", [str(module.__file__), *argv]):
        return module.main(argv)


def run_script_subprocess(script: str, args: list, tiny: bool = True, *, cwd: Path | str = REPO,
                          env: dict[str, str] | None = None, input: str | None = None,
                          timeout: float = 600) -> subprocess.CompletedProcess:
    """`python REPO/script ARGS...` (TINY_RUN added when `tiny`) in `cwd`, with `env` (None: this process's, which
    conftest.py keeps offline), `input` on its standard input; its output captured as text."""
    command = [sys.executable, str(REPO / script), *script_arguments(args, tiny)]
    return subprocess.run(command, cwd=cwd, env=env, input=input, capture_output=True, text=True, timeout=timeout)
