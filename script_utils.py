"""Command-line parsing shared by the scripts: a config file with flags that override it, and a --help page that
shows what the script itself does before the Trainer's flags.

    parser = ScriptArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments), description=__doc__)
    model_args, data_args, training_args = parse_args_with_config(parser, sys.argv[1:])

`python SCRIPT.py config.json --learning_rate 3e-5`: the config file (JSON, or YAML with `.yaml`/`.yml`) gives
values, and the flags after it override them. TrainingArguments passes through untouched: every Trainer flag works.

Resuming a killed run: `detect_last_checkpoint(training_args, overwrite_output_dir)` is called once, before
training; the scripts pass what it returns to `Trainer.train(resume_from_checkpoint=...)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, NoReturn

import torch
import transformers
import yaml
from transformers import HfArgumentParser, TrainingArguments

from errors import UsageError

# Every module and script of this project logs as qa_transfer.<its name>, so that setup_logging() sets all of them
# through their one parent.
LOGGER_NAMESPACE = "qa_transfer"
logger = logging.getLogger("qa_transfer.script_utils")

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
TRAINING_ARGUMENTS_DOCS = "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments"
TRAINER_GROUP = "Trainer options (transformers.TrainingArguments)"
# The Trainer flags that --help lists for a training script; every other TrainingArguments flag works as well.
TRAINING_FLAGS = (
    "do_train", "do_eval", "do_predict", "num_train_epochs", "max_steps", "learning_rate", "lr_scheduler_type",
    "warmup_steps", "weight_decay", "max_grad_norm", "label_smoothing_factor", "optim",
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "train_sampling_strategy", "eval_strategy", "eval_steps", "logging_strategy", "logging_steps", "save_strategy",
    "save_steps", "save_total_limit", "resume_from_checkpoint", "load_best_model_at_end", "metric_for_best_model",
    "seed", "bf16", "fp16", "use_cpu", "dataloader_num_workers", "dataloader_pin_memory", "report_to", "log_level",
)
# The Trainer flags that change what an evaluation-only script (cross_eval.py) does.
EVALUATION_FLAGS = (
    "per_device_eval_batch_size", "eval_accumulation_steps", "bf16", "fp16", "bf16_full_eval", "fp16_full_eval",
    "seed", "use_cpu", "dataloader_num_workers", "dataloader_pin_memory", "report_to", "log_level", "disable_tqdm",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default, unless its help already states one or the
    option is a `--no_<flag>` switch (whose stored default would read as the flag's)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if is_negation(action) or action.default is None or "default" in help_text.lower():
            return help_text
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        # HfArgumentParser accepts `--max-seq-length` as well as `--max_seq_length`; list the second form only.
        options = [option for option in action.option_strings if "-" not in option[2:]] or action.option_strings
        return super()._format_action_invocation(argparse.Action(options, action.dest, nargs=action.nargs,
                                                                 metavar=action.metavar))


def is_negation(action: argparse.Action) -> bool:
    """The `--no_<flag>` switch HfArgumentParser adds for a boolean field that defaults to True."""
    return action.const is False and any(option.startswith("--no_") for option in action.option_strings)


class ScriptArgumentParser(HfArgumentParser):
    """HfArgumentParser for this project's scripts.

    - `--help` starts with `description` (the script's docstring) and a short usage line; the script's own
      dataclasses come first, each in its own group, then TrainingArguments in one group that lists the
      `trainer_flags_shown` (TRAINING_FLAGS or EVALUATION_FLAGS; None: all) and points to the documentation of
      the others, which are accepted all the same.
    - Abbreviated flags are refused (`--max_seq 256` is an error, not `--max_seq_length 256`).
    - Without an accelerator, `--dataloader_pin_memory` defaults to False (pinning needs one, and torch warns on
      every run otherwise); a value given by the user is kept.
    """

    def __init__(
        self,
        dataclass_types: Iterable[type],
        description: str | None,
        trainer_flags_shown: Collection[str] | None = TRAINING_FLAGS,
        trainer_note: str = "The Trainer flags used most; every other TrainingArguments flag works as well. ",
    ):
        self.trainer_note = trainer_note
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else None
        super().__init__(
            dataclass_types,
            prog=prog,
            usage="%(prog)s [CONFIG.json|CONFIG.yaml] [--option VALUE ...]",
            description=(description or "").rstrip()
            + "\n\nA JSON or YAML config file may come first; flags after it override its values.",
            formatter_class=HelpFormatter,
            allow_abbrev=False,
        )
        hidden = set()
        if trainer_flags_shown is not None:
            hidden = {f.name for f in dataclasses.fields(TrainingArguments)} - set(trainer_flags_shown)
        for action in self._actions:
            if action.dest in hidden:
                action.help = argparse.SUPPRESS
            elif is_negation(action):
                action.help = f"Turn --{action.dest} off."
        if any(issubclass(dtype, TrainingArguments) for dtype in self.dataclass_types) and not has_accelerator():
            self.set_defaults(dataloader_pin_memory=False)

    def _add_dataclass_arguments(self, dtype: type) -> None:
        # HfArgumentParser puts a dataclass's fields in a group named by its `_argument_group_name`; a subclass
        # carrying that name registers the same fields (parsing still builds instances of `dtype` itself).
        if issubclass(dtype, TrainingArguments):
            title = TRAINER_GROUP
        else:
            title = f"{dtype.__name__} (options of this script)"
        super()._add_dataclass_arguments(type(dtype.__name__, (dtype,), {"_argument_group_name": title}))
        group = self._action_groups[-1]
        if issubclass(dtype, TrainingArguments):
            group.description = f"{self.trainer_note}All of them are documented at {TRAINING_ARGUMENTS_DOCS}"
        elif dtype.__doc__ and not dtype.__doc__.startswith(f"{dtype.__name__}("):  # not the generated signature
            group.description = dtype.__doc__
        if group.description:  # the raw-description formatter keeps line breaks as given: wrap it here
            group.description = textwrap.fill(" ".join(group.description.split()), width=100)

    def adopt_trainer_flag(self, dest: str, help_text: str) -> None:
        """Show the Trainer flag `dest` among the script's own options (at the end of its last group), with the
        script's own help: for a flag the script gives its own meaning or default (`--output_dir`, the classifier's
        `--label_names`)."""
        action = next(action for action in self._actions if action.dest == dest and not is_negation(action))
        trainer_group = next(group for group in self._action_groups if group.title == TRAINER_GROUP)
        own_group = [group for group in self._action_groups[2:] if group.title != TRAINER_GROUP][-1]
        trainer_group._group_actions.remove(action)
        own_group._group_actions.append(action)
        action.help = help_text


def setup_logging(training_args: TrainingArguments) -> None:
    """The transformers examples' logging block, shared by every script: one format on stdout, INFO on the main
    process (so that conversion, windowing and resumption summaries show by default), warnings only on the others,
    and `--log_level` / `--log_level_replica` obeyed by this project's, transformers' and datasets' loggers."""
    import datasets  # here, not at the top: parsing alone (`--help`, fine_tune_all's --dry_run) does not need it

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        # transformers' default is WARNING, which get_process_log_level() would hand on to every logger.
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    logging.getLogger(LOGGER_NAMESPACE).setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def run_script(main: Callable[[], int | None]) -> NoReturn:
    """A script's entry point: run `main()` and exit with its status (None: 0); a UsageError (bad input, a bad flag,
    ...) exits with status 1 and `error: <message>` on stderr, without a traceback."""
    try:
        status = main()
    except UsageError as err:
        sys.exit(f"error: {err}")
    sys.exit(status or 0)


def has_accelerator() -> bool:
    return torch.accelerator.is_available()


def read_config_file(path: str, parser: HfArgumentParser) -> dict[str, Any]:
    """A config file's values, checked against the parser's options; a ValueError names the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        values = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the config file: {err}") from err
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file holds one mapping of option names to values")
    known = {f.name for dtype in parser.dataclass_types for f in dataclasses.fields(dtype) if f.init}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {', '.join(unknown)}")
    for action in parser._actions:
        value = values.get(action.dest)
        if action.dest in values and action.nargs in ("+", "*") and not isinstance(value, list):
            values[action.dest] = [value]  # `datasets: squad_v2` means the list of one
        elif action.choices is not None and isinstance(value, str) and value not in action.choices:
            raise ValueError(f"{path}: {action.dest} must be one of {', '.join(map(str, action.choices))}, not {value!r}")
    return values


def parse_args_with_config(
    parser: HfArgumentParser, argv: list[str] | None = None, defaults: dict[str, Any] | None = None
) -> tuple:
    """The dataclasses from, by rising precedence: the fields' defaults, `defaults` (a script's own), a config file
    given as the first argument, the flags. Unknown flags are an argparse error (exit status 2); a bad config
    file or a dataclass check raises ValueError."""
    argv = list(sys.argv[1:] if argv is None else argv)
    values = dict(defaults or {})
    if argv and not argv[0].startswith("-") and argv[0].endswith(CONFIG_SUFFIXES):
        values.update(read_config_file(argv.pop(0), parser))
    parser.set_defaults(**values)
    for action in parser._actions:
        if action.dest in values:
            action.required = False  # the config gives it; a flag may still override it
    *outputs, remaining = parser.parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True, look_for_args_file=False
    )
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(outputs)


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
