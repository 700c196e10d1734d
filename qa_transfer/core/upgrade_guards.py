"""The transformers Trainer's internals that this project reads, writes or overrides: private (or barely
documented) names that a transformers release may rename or drop without notice. Each is listed here once, and
checked whenever a BaseTrainer is built (`check_trainer_internals`), so that such a release stops the run with the
name and what breaks, instead of the project silently running on the Trainer's defaults.

A check needs no model run: it looks at the Trainer class, and at the source of the Trainer methods that use the
name (read once per method; an installation without sources gets only the checks that need none).
HfArgumentParser's two private names, which core.arguments.ScriptArgumentParser uses to shape --help, are listed
here too (`PARSER_INTERNALS`) and checked whenever such a parser is built (`check_parser_internals`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from dataclasses import dataclass

import transformers
from transformers import HfArgumentParser, Trainer

logger = logging.getLogger("qa_transfer.core.upgrade_guards")

# What kind of name it is, which says how it is checked.
METHOD = "method"  # the class defines it (the project overrides it), and `used_by` calls it
CLASS_ATTRIBUTE = "class attribute"  # the class defines it (the project sets it), and `used_by` reads it
TRAINING_ATTRIBUTE = "training attribute"  # `used_by` makes it before the on_train_begin event; read after that


@dataclass(frozen=True)
class Internal:
    name: str
    kind: str
    used_by: tuple[str, ...]  # the Trainer's methods that call, read or make it
    needed_for: str  # what breaks without it


INTERNALS = (
    Internal("_get_eval_sampler", METHOD, ("get_eval_dataloader", "get_test_dataloader"),
             "core.trainer.BaseTrainer overrides it so that evaluation and prediction batches keep the dataset's "
             "order, which QA post-processing and the classifier's predictions rely on"),
    Internal("loss_is_scaled_for_ga", CLASS_ATTRIBUTE, ("training_step",),
             "qa.training.QATrainer sets it so that the loss of --no_answer_loss_weight is divided over the "
             "gradient accumulation steps"),
    Internal("_tr_loss", TRAINING_ATTRIBUTE, ("_inner_training_loop",),
             "core.trainer.LossSumRecord reads the losses not logged yet from it, for the whole run's train_loss "
             "after a resume"),
    Internal("_total_loss_scalar", TRAINING_ATTRIBUTE, ("_inner_training_loop",),
             "core.trainer.LossSumRecord reads the sum of the logged losses from it, for the whole run's "
             "train_loss after a resume"),
)


@functools.cache
def method_source(method: object) -> str | None:
    """The source of a method, or None (with one warning) where it cannot be read."""
    try:
        return inspect.getsource(method)
    except (OSError, TypeError):
        logger.warning("cannot read the source of transformers' %s: the upgrade checks that read it are skipped",
                       getattr(method, "__qualname__", method))
        return None


def problem(internal: Internal) -> str | None:
    """What is wrong with `internal` in this transformers release's Trainer, or None."""
    if internal.kind == METHOD and not callable(getattr(Trainer, internal.name, None)):
        return f"has no method {internal.name} any more"
    if internal.kind == CLASS_ATTRIBUTE and not hasattr(Trainer, internal.name):
        return f"has no attribute {internal.name} any more"
    for method_name in internal.used_by:
        method = getattr(Trainer, method_name, None)
        if not callable(method):
            return f"has no method {method_name} any more, where {internal.name} is used"
        source = method_source(method)
        if source is None:
            continue
        if internal.kind == TRAINING_ATTRIBUTE:
            # LossSumRecord reads the attribute once on_train_begin has been signalled: it must be made before.
            made = re.search(rf"\bself\.{internal.name}\s*=", source)
            event = source.find("on_train_begin(")
            if made is None or event < 0 or event < made.start():
                return f"{method_name} no longer sets {internal.name} before the on_train_begin event"
        elif not re.search(rf"\b{internal.name}\b", source):
            return f"{method_name} no longer uses {internal.name}"
    return None


def check_trainer_internals() -> None:
    """Raise a RuntimeError naming every internal that this transformers release's Trainer no longer has as the
    project expects, and what breaks without it."""
    problems = [f"Trainer {found}: {internal.needed_for}" for internal in INTERNALS if (found := problem(internal))]
    if problems:
        raise RuntimeError(
            f"transformers {transformers.__version__} differs from the release this project was written for: "
            + "; ".join(problems) + ". The project needs updating for this transformers release."
        )


# HfArgumentParser's: ScriptArgumentParser overrides the method and sets the attribute on a subclass of each
# dataclass, so that every dataclass gets a group of its own in --help.
PARSER_INTERNALS = (
    Internal("_add_dataclass_arguments", METHOD, ("__init__",),
             "core.arguments.ScriptArgumentParser overrides it to title each dataclass's group in --help"),
    Internal("_argument_group_name", CLASS_ATTRIBUTE, ("_add_dataclass_arguments",),
             "core.arguments.ScriptArgumentParser sets it to title each dataclass's group in --help"),
)


def parser_problem(internal: Internal) -> str | None:
    """What is wrong with `internal` in this transformers release's HfArgumentParser, or None."""
    method = getattr(HfArgumentParser, internal.used_by[0], None)
    if internal.kind == METHOD and not callable(getattr(HfArgumentParser, internal.name, None)):
        return f"has no method {internal.name} any more"
    if not callable(method):
        return f"has no method {internal.used_by[0]} any more, where {internal.name} is used"
    source = method_source(method)
    if source is not None and not re.search(rf"\b{internal.name}\b", source):
        return f"{internal.used_by[0]} no longer uses {internal.name}"
    return None


def check_parser_internals() -> None:
    """Raise a RuntimeError naming every HfArgumentParser internal that this transformers release no longer has
    as the project expects, and what breaks without it."""
    problems = [f"HfArgumentParser {found}: {internal.needed_for}" for internal in PARSER_INTERNALS
                if (found := parser_problem(internal))]
    if problems:
        raise RuntimeError(
            f"transformers {transformers.__version__} differs from the release this project was written for: "
            + "; ".join(problems) + ". The project needs updating for this transformers release."
        )
