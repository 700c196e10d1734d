"""A QA transfer script's plumbing: its entry point, its logging, NAME=VALUE flags, and resuming a killed run.

Every script ends with

    def main(argv: list[str] | None = None) -> int | None:
        ...                     # parse -> load -> preprocess -> train -> evaluate -> write results
    if __name__ == "__main__":
        run_script(main)

`main` raises a UsageError (errors.py) for anything the user can fix and never exits itself; `run_script` turns
that into `error: <message>` and exit status 1.

The command-line parser (a config file with flags that override it, a --help page that shows what the script
itself does) lives in core/arguments.py, which imports transformers; the config file itself is read here
(`config_file_argument`, `read_config_values`, `use_config_values`), for any argparse parser. This module imports
no third-party package at the top, so that fine_tune_all.py (which only starts run_qa.py) stays light.

Resuming a killed run: `detect_last_checkpoint(training_args, overwrite_output_dir, model_args, data_args)` is
called once, before training; the scripts pass what it returns to `Trainer.train(resume_from_checkpoint=...)`. A
folder that holds a finished run stops the script there (RunFinished: one line, exit status 0), its files kept as
they are; Ctrl-C stops it with one line that names the checkpoint kept and the command that resumes (exit status
130). A run stopped before its first checkpoint is known by its run_arguments.json alone in the folder: the same
arguments start again, other ones need --overwrite_output_dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from qa_transfer.core.errors import ArgumentError, NetworkDownError, OutputDirError, UsageError
from qa_transfer.core.precision import cpu_bf16_instructions, precision_name

if TYPE_CHECKING:
    from transformers import TrainingArguments

# Every module and script of this project logs as qa_transfer.<its name>, so that setup_logging() sets all of them
# through their one parent.
LOGGER_NAMESPACE = "qa_transfer"
logger = logging.getLogger("qa_transfer.core.scripts")


# Lines of transformers' that say nothing a user of these scripts acts on; shown again with --log_level info.
QUIET_TRANSFORMERS_MESSAGES = (
    "Do not forget to share your model",
    "mtime may not be reliable",  # checkpoints rotated by step number instead, which is what they are named by
)
LOAD_REPORT_MARK = "LOAD REPORT"


class TransformersLogFilter(logging.Filter):
    """Drops transformers' advertising line, and shortens a model's LOAD REPORT table (weights that the checkpoint
    lacks or has in excess: the usual when a base model gets a new head) to one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(quiet in message for quiet in QUIET_TRANSFORMERS_MESSAGES):
            return False
        if LOAD_REPORT_MARK in message:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", message)
            statuses = re.findall(r"\|\s*(MISSING|UNEXPECTED|MISMATCH)\b", plain)
            counts = ", ".join(f"{statuses.count(s)} {s.lower()}" for s in ("MISSING", "UNEXPECTED", "MISMATCH")
                               if s in statuses)
            title = plain.splitlines()[0].replace(" LOAD REPORT from:", " loaded from")
            # MISSING: newly initialised (a new head); UNEXPECTED: the checkpoint's own head, unused
            record.msg = f"{title}: weights {counts or 'differ'} (--log_level info shows the table)"
            record.args = ()
        return True


def setup_logging(training_args: TrainingArguments, *script_arguments: Any) -> None:
    """The transformers examples' logging block, shared by every script, made quieter: one format on stdout; on
    the main process this project's loggers at INFO (conversion, windowing and resumption summaries) and, of
    transformers', the Trainer's (data counts, steps, checkpoints saved); the rest of transformers and datasets at
    WARNING (config dumps, file loading); warnings only on the other processes. An explicit `--log_level` /
    `--log_level_replica` sets every logger. Then the precision, and a `note:` for each option set in
    `script_arguments` whose meaning differs on purpose from the transformers examples' option of that name
    (`example_differences`)."""
    # Here, not at the top: fine_tune_all.py imports this module and must not load them.
    import datasets
    import transformers

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    explicit = training_args.should_log and training_args.log_level != "passive"
    project_level = logging.INFO if training_args.should_log and not explicit else log_level
    logging.getLogger(LOGGER_NAMESPACE).setLevel(project_level)
    library_level = log_level if explicit or not training_args.should_log else logging.WARNING
    datasets.utils.logging.set_verbosity(library_level)
    datasets.utils.logging.disable_propagation()  # datasets has its own handler: each line once
    transformers.utils.logging.set_verbosity(library_level)
    transformers.utils.logging.get_logger("transformers.trainer").setLevel(project_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    # transformers propagates to the root logger when CI is set: each line would print twice, the second time
    # past the filter below. Its own handler alone, as datasets above.
    transformers.utils.logging.disable_propagation()
    for handler in transformers.utils.logging.get_logger().handlers:
        for old_filter in [f for f in handler.filters if isinstance(f, TransformersLogFilter)]:
            handler.removeFilter(old_filter)  # set by an earlier run in this process
        if not explicit:
            handler.addFilter(TransformersLogFilter())
    precision = precision_name(training_args)
    if precision.startswith("bf16 (CPU"):
        logger.info("precision: %s, on this CPU's %s instructions", precision, cpu_bf16_instructions())
    else:
        logger.info("precision: %s", precision)
    for arguments in script_arguments:
        for note in example_differences(arguments):
            logger.info("note: %s", note)


def example_differences(arguments: Any) -> list[str]:
    """The notes of the options set (to other than their default) in a parsed dataclass whose meaning here differs
    on purpose from the transformers examples' option of that name: its EXAMPLE_DIFFERENCES, name -> note."""
    notes = getattr(type(arguments), "EXAMPLE_DIFFERENCES", {})
    return [notes[f.name] for f in dataclasses.fields(arguments)
            if f.name in notes and getattr(arguments, f.name) != f.default]


RUN_ARGUMENTS_FILE = "run_arguments.json"
# Arguments that say what to do with --output_dir, not what to train: a rerun may add or drop them.
FOLDER_HANDLING_ARGUMENTS = ("overwrite_output_dir", "resume_from_checkpoint")


def run_arguments_record(training_args: TrainingArguments, *script_args: object) -> dict[str, Any]:
    """Every argument of a run as run_arguments.json holds it: each dataclass by its class name, as JSON values
    (its init fields: a field that a script leaves out with `init=False` is no argument of it)."""
    record = {type(args).__name__: {f.name: getattr(args, f.name) for f in dataclasses.fields(args) if f.init}
              for args in script_args}
    record["TrainingArguments"] = training_args.to_dict()
    return json.loads(json.dumps(record, default=str))


def changed_arguments(output_dir: str, training_args: TrainingArguments, *script_args: object) -> list[str] | None:
    """The arguments (`Group.name`) in which --output_dir's run_arguments.json differs from this run's, the ones
    in FOLDER_HANDLING_ARGUMENTS aside: [] for the same command; None when the file cannot be read."""
    try:
        with open(os.path.join(output_dir, RUN_ARGUMENTS_FILE), encoding="utf-8") as handle:
            earlier = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(earlier, dict):
        return None
    current = run_arguments_record(training_args, *script_args)
    changed = []
    for group in sorted(set(earlier) | set(current)):
        before, now = earlier.get(group), current.get(group)
        if not isinstance(before, dict) or not isinstance(now, dict):
            changed.append(group)
            continue
        changed += [f"{group}.{name}" for name in sorted(set(before) | set(now))
                    if name not in FOLDER_HANDLING_ARGUMENTS and before.get(name, ...) != now.get(name, ...)]
    return changed


def save_run_arguments(training_args: TrainingArguments, *script_args: object) -> None:
    """Every argument of this run (the script's dataclasses and TrainingArguments) into --output_dir's
    run_arguments.json, and one line in the log instead of the Trainer's 115 (the training settings only when
    training); from the main process, once the inputs are checked (nothing is written before)."""
    if training_args.process_index != 0:
        return
    from qa_transfer.core.results_io import write_json_atomic

    path = os.path.join(training_args.output_dir, RUN_ARGUMENTS_FILE)
    write_json_atomic(path, run_arguments_record(training_args, *script_args))
    if not training_args.do_train:  # the training settings would describe nothing that happens
        logger.info("arguments: %s (evaluation batch %d per device)", path,
                    training_args.per_device_eval_batch_size)
        return
    logger.info("arguments: %s (learning rate %g, %s, batch %d per device, seed %d)", path,
                training_args.learning_rate,
                f"{training_args.max_steps} steps" if training_args.max_steps > 0
                else f"{training_args.num_train_epochs:g} epochs",
                training_args.per_device_train_batch_size, training_args.seed)


class RunFinished(Exception):
    """--output_dir holds this training, finished: nothing to do. Not an error: `run_script` prints the message
    (empty on the processes other than the main one) and exits with status 0."""


# The output folder of the run in progress (set by detect_last_checkpoint), for the line that Ctrl-C prints.
_run_output_dir: str | None = None


def interrupted_message(argv: list[str] | None) -> str:
    """The one line printed on Ctrl-C: the checkpoint kept (the last complete one) and the command that resumes."""
    command = shlex.join(["python", *(sys.argv if argv is None else [sys.argv[0], *argv])])
    if _run_output_dir is None:
        return f"interrupted; run the same command again: {command}"
    complete = [c for c in list_checkpoints(_run_output_dir) if checkpoint_is_complete(c)]
    if not complete:
        return f"interrupted; no checkpoint kept in {_run_output_dir}, the same command starts again: {command}"
    return f"interrupted; kept {complete[-1]}, the same command resumes from it: {command}"


def run_script(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> NoReturn:
    """A script's entry point: run `main(argv)` (None: the command line) and exit with its status (None: 0); a
    UsageError (bad input, a bad flag, ...) exits with status 1 and `error: <message>` on stderr, without a
    traceback (a NetworkDownError, the same with status NETWORK_DOWN_EXIT_STATUS); a finished run exits with
    status 0 and one line; Ctrl-C (SIGINT) exits with status 130 and one line that says how to resume."""
    from qa_transfer.core.network import NETWORK_DOWN_EXIT_STATUS

    try:
        status = main(argv)
    except NetworkDownError as err:  # its own status, so that fine_tune_all.py does not try the next dataset
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(NETWORK_DOWN_EXIT_STATUS)
    except UsageError as err:
        sys.exit(f"error: {err}")
    except RunFinished as done:
        if str(done):
            print(done, flush=True)
        sys.exit(0)
    except KeyboardInterrupt:
        print(f"\n{interrupted_message(argv)}", file=sys.stderr, flush=True)
        sys.exit(130)
    sys.exit(status or 0)


CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def config_file_argument(argv: list[str]) -> str | None:
    """The config file given as the first argument (`SCRIPT.py config.yaml --flag ...`), taken out of `argv`; None
    when the first argument is a flag."""
    if argv and not argv[0].startswith("-") and argv[0].endswith(CONFIG_SUFFIXES):
        return argv.pop(0)
    return None


def read_config_values(path: str, actions: list[argparse.Action], known: set[str],
                       aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """A config file's values (JSON, or YAML with `.yaml`/`.yml`), checked against the option names `known` and
    the parser's `actions`: a single value or a mapping given for a list option becomes a list (`datasets:
    squad_v2`; `train_file: {squad_v2: train.json}` as NAME=VALUE pairs), a choice must be one of its choices.
    Anything wrong is an ArgumentError naming the file. `aliases` maps other spellings of option names to theirs."""
    import yaml  # here, not at the top: see the module's docstring

    try:
        text = Path(path).read_text(encoding="utf-8")
        values = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
        raise ArgumentError(f"{path}: cannot read the config file: {err}") from err
    if not isinstance(values, dict):
        raise ArgumentError(f"{path}: a config file holds one mapping of option names to values")
    values = {(aliases or {}).get(key, key): value for key, value in values.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ArgumentError(f"{path}: unknown option(s) {', '.join(unknown)}")
    for action in actions:
        value = values.get(action.dest)
        if action.dest in values and action.nargs in ("+", "*"):
            if isinstance(value, dict):
                values[action.dest] = [f"{name}={item}" for name, item in value.items()]
            elif not isinstance(value, list):
                values[action.dest] = [value]  # `datasets: squad_v2` means the list of one
        elif action.choices is not None and isinstance(value, str) and value not in action.choices:
            raise ArgumentError(f"{path}: {action.dest} must be one of {', '.join(map(str, action.choices))}, "
                                f"not {value!r}")
    return values


def use_config_values(parser: argparse.ArgumentParser, actions: list[argparse.Action], values: dict[str, Any]) -> None:
    """Make a config file's values the parser's defaults, so that flags still override them; an option (among
    the parser's `actions`) that the config gives is no longer required on the command line."""
    parser.set_defaults(**values)
    for action in actions:
        if action.dest in values:
            action.required = False


def parse_name_value_pairs(items: list[str], flag: str) -> dict[str, str]:
    """`["NAME=VALUE", ...]` from a command line as {NAME: VALUE}; a malformed item is an ArgumentError naming
    `flag`."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ArgumentError(f"{flag} takes NAME=VALUE pairs, got {item!r}")
        pairs[name] = value
    return pairs


# The Trainer's checkpoint folders, `checkpoint-<global step>`, and the file it writes last into each of them.
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
CHECKPOINT_COMPLETE_MARKER = "trainer_state.json"

OVERWRITE_OUTPUT_DIR_HELP = (
    "Train from scratch even when --output_dir holds checkpoints or files of an earlier run: its checkpoints are "
    "deleted and its files overwritten. Without it, training resumes from the folder's last complete checkpoint."
)


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


FINISHED_RESULTS_FILE = "train_results.json"


def finished_run_step(training_args: TrainingArguments) -> int | None:
    """The last step of the training that --output_dir holds, if it finished (the Trainer's final state and the
    training results are written, once training has ended) and these arguments ask for no more steps; else None."""
    output_dir = training_args.output_dir
    if not os.path.isfile(os.path.join(output_dir, FINISHED_RESULTS_FILE)):
        return None
    try:
        with open(os.path.join(output_dir, CHECKPOINT_COMPLETE_MARKER), encoding="utf-8") as handle:
            state = json.load(handle)
        step, last_step, epochs = int(state["global_step"]), int(state["max_steps"]), state["num_train_epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if step < last_step or step <= 0:
        return None
    # Asked for more than was trained (a higher --max_steps or more epochs): training goes on from the checkpoint.
    if training_args.max_steps > 0 and training_args.max_steps > step:
        return None
    if training_args.max_steps <= 0 and math.ceil(training_args.num_train_epochs) > epochs:
        return None
    return step


def detect_last_checkpoint(training_args: TrainingArguments, overwrite_output_dir: bool,
                           *script_args: object) -> str | None:
    """The checkpoint that training should resume from, or None to start from scratch.

    - `--resume_from_checkpoint PATH` wins; `true` / `latest` mean the last complete checkpoint (an error if none).
    - Otherwise, when --output_dir holds checkpoints, the last complete one (logged as `resuming from <path>`).
      Checkpoints that a killed run left half-written are deleted first: the Trainer would otherwise count them
      as the newest when it rotates checkpoints (`--save_total_limit`), and delete good ones in their favour.
    - With `overwrite_output_dir`, every checkpoint is deleted and training starts again; without it, a folder
      holding an earlier run's files (a finished model, results) but no checkpoint is an OutputDirError rather
      than silently overwritten.
    - A folder whose only file is the run_arguments.json of this same command (`script_args`, the script's
      dataclasses, as save_run_arguments gets them) holds a run stopped before its first checkpoint: nothing
      of it is worth keeping, so training starts again, as Ctrl-C's line promised.

    - A folder holding this training finished (its results written, and the arguments ask for no more steps)
      raises RunFinished, before anything is read or written: a rerun of a finished command keeps every file.

    Call it in every process: each decides from the same folder, and only the main process deletes.
    """
    global _run_output_dir
    _run_output_dir = training_args.output_dir
    requested = training_args.resume_from_checkpoint
    if not training_args.do_train or (requested and requested.lower() not in ("true", "latest")):
        return requested
    output_dir = training_args.output_dir
    if not overwrite_output_dir and not requested and (finished_step := finished_run_step(training_args)):
        raise RunFinished(
            f"{output_dir} holds this training, finished at step {finished_step}: nothing to do, its model and "
            "result files are kept as they are. To train again, add --overwrite_output_dir (or choose another "
            f"--output_dir); to evaluate or predict with its model, use --model_name_or_path {output_dir} "
            "without --do_train." if training_args.process_index == 0 else ""
        )
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
    if not earlier_files or overwrite_output_dir:
        return None
    changed = changed_arguments(output_dir, training_args, *script_args) if script_args else None
    # Not deleted: save_run_arguments rewrites it, and every process decides from the same folder.
    if earlier_files == [RUN_ARGUMENTS_FILE] and changed == []:
        if is_main:
            logger.warning("%s holds this command's run, stopped before its first checkpoint: starting again",
                           output_dir)
        return None
    shown = ", ".join(earlier_files[:4]) + (", ..." if len(earlier_files) > 4 else "")
    differing = ""
    if changed:
        differing = f", run with other arguments ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}),"
    raise OutputDirError(
        f"--output_dir {output_dir} already holds an earlier run's files ({shown}){differing} and no checkpoint to "
        "resume from: pass --overwrite_output_dir to train from scratch and overwrite them, or choose another "
        "--output_dir"
    )
