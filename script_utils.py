"""Helpers shared by the training scripts (run_qa.py, run_classification.py).

Resuming a killed run: `detect_last_checkpoint(training_args, overwrite_output_dir)` is called once, before
training; the scripts pass what it returns to `Trainer.train(resume_from_checkpoint=...)`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil

from transformers import TrainingArguments

logger = logging.getLogger(__name__)

# The Trainer's checkpoint folders, `checkpoint-<global step>`, and the file it writes last into each of them.
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
CHECKPOINT_COMPLETE_MARKER = "trainer_state.json"

OVERWRITE_OUTPUT_DIR_HELP = (
    "Train from scratch even when --output_dir holds checkpoints or files of an earlier run: its checkpoints are "
    "deleted and its files overwritten. Without it, training resumes from the folder's last complete checkpoint."
)


class OutputDirError(ValueError):
    """--output_dir holds an earlier run's files and nothing to resume from."""


def checkpoint_is_complete(checkpoint_dir: str) -> bool:
    """Whether the Trainer finished writing this checkpoint: trainer_state.json comes last and must parse (a
    process killed while writing it leaves it missing or cut short)."""
    try:
        with open(os.path.join(checkpoint_dir, CHECKPOINT_COMPLETE_MARKER), encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, ValueError):
        return False
    return True


def list_checkpoints(output_dir: str) -> list[str]:
    """The `checkpoint-<step>` folders of `output_dir`, oldest step first."""
    if not os.path.isdir(output_dir):
        return []
    steps = []
    for name in os.listdir(output_dir):
        match = CHECKPOINT_PATTERN.match(name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            steps.append((int(match.group(1)), name))
    return [os.path.join(output_dir, name) for _, name in sorted(steps)]


def detect_last_checkpoint(training_args: TrainingArguments, overwrite_output_dir: bool) -> str | None:
    """The checkpoint that training should resume from, or None to start from scratch.

    - `--resume_from_checkpoint PATH` wins; `true` / `latest` mean the last complete checkpoint (an error if none).
    - Otherwise, when --output_dir holds checkpoints, the last complete one (logged as `resuming from <path>`).
      Checkpoints that a killed run left half-written are deleted first: the Trainer would otherwise count them
      as the newest when it rotates checkpoints (`--save_total_limit`), and delete good ones in their favour.
    - With `overwrite_output_dir`, every checkpoint is deleted and training starts again; without it, a folder
      holding an earlier run's files (a finished model, results) but no checkpoint is an OutputDirError rather
      than silently overwritten.

    Call it in every process: each decides from the same folder, and only the main process deletes.
    """
    requested = training_args.resume_from_checkpoint
    if not training_args.do_train or (requested and requested.lower() not in ("true", "latest")):
        return requested
    output_dir = training_args.output_dir
    checkpoints = list_checkpoints(output_dir)
    complete = [] if overwrite_output_dir and not requested else [c for c in checkpoints if checkpoint_is_complete(c)]
    # Everything after the last complete checkpoint is half-written; with --overwrite_output_dir, everything goes.
    doomed = checkpoints[checkpoints.index(complete[-1]) + 1:] if complete else checkpoints
    # Warnings, so that they show at the scripts' default log level; once, from the main process.
    is_main = training_args.process_index == 0
    if is_main and doomed:
        why = "--overwrite_output_dir" if overwrite_output_dir and not requested else "incomplete, killed while saving"
        logger.warning("deleting %s (%s)", ", ".join(doomed), why)
    with training_args.main_process_first(local=False, desc="deleting unusable checkpoints"):
        if is_main:
            for checkpoint in doomed:
                shutil.rmtree(checkpoint, ignore_errors=True)
    if complete:
        if is_main:
            logger.warning("resuming from %s", complete[-1])
        return complete[-1]
    if requested:
        raise OutputDirError(f"--resume_from_checkpoint {requested}: {output_dir} holds no complete checkpoint")
    earlier_files = sorted(name for name in os.listdir(output_dir) if not name.startswith(".")
                           and os.path.isfile(os.path.join(output_dir, name))) if os.path.isdir(output_dir) else []
    if earlier_files and not overwrite_output_dir:
        shown = ", ".join(earlier_files[:4]) + (", ..." if len(earlier_files) > 4 else "")
        raise OutputDirError(
            f"--output_dir {output_dir} already holds an earlier run's files ({shown}) and no checkpoint to resume "
            "from: pass --overwrite_output_dir to train from scratch and overwrite them, or choose another --output_dir"
        )
    return None
