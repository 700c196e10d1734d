"""Run a script as a preempted machine would: SIGKILL at a chosen point, whole process group at once.

    KILLPOINT=SPEC python tests/killpoint.py SCRIPT.py ARGS...

runs SCRIPT.py with ARGS as `__main__` (as `python SCRIPT.py ARGS...` would), and kills its process group (the
test starts each command in a session of its own, so a fine_tune_all.py parent dies with its run_qa.py child):

- `checkpoint:N`: while the Trainer writes its N-th checkpoint, after the model, optimizer and RNG states and
  halfway through trainer_state.json (the file it writes last);
- `replace:NAME`: when the complete temporary file of an atomic write of a file called NAME is about to be renamed
  into place;
- `start:ARG`: before the script starts, if ARG is one of its arguments (e.g. a dataset name of fine_tune_all.py).

Without KILLPOINT the script just runs. Used as fine_tune_all.py's `--launcher`, it applies to every run_qa.py.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys


def kill_process_group() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.killpg(os.getpgrp(), signal.SIGKILL)


def arm(spec: str, script_args: list[str]) -> None:
    kind, _, value = spec.partition(":")
    if kind == "start":
        if value in script_args:
            kill_process_group()
    elif kind == "checkpoint":
        from transformers.trainer_callback import TrainerState

        save_to_json = TrainerState.save_to_json
        saves = 0

        def save_then_die_halfway(self, json_path: str) -> None:
            nonlocal saves
            save_to_json(self, json_path)
            if os.path.basename(os.path.dirname(json_path)).startswith("checkpoint-"):
                saves += 1
                if saves == int(value):
                    os.truncate(json_path, os.path.getsize(json_path) // 2)
                    kill_process_group()

        TrainerState.save_to_json = save_then_die_halfway
    elif kind == "replace":
        replace = os.replace

        def die_before_renaming(src, dst, **kwargs):
            if os.path.basename(os.fspath(dst)) == value:
                kill_process_group()
            return replace(src, dst, **kwargs)

        os.replace = die_before_renaming
    else:
        raise SystemExit(f"killpoint: unknown KILLPOINT {spec!r}")


if __name__ == "__main__":
    script, *args = sys.argv[1:]
    if os.environ.get("KILLPOINT"):
        arm(os.environ["KILLPOINT"], args)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
