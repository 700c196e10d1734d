#!/usr/bin/env python
"""Fine-tune one QA model per dataset with run_qa.py: the rows of the cross-dataset matrix (cross_eval.py).

    python fine_tune_all.py configs/demo.yaml                          # the offline demo: models and matrix
    python fine_tune_all.py --output_root models                       # the paper's five datasets, from the hub
    python fine_tune_all.py --output_root models --datasets squad_v2 newsqa --data_dir newsqa=~/data/newsqa
    python fine_tune_all.py --output_root models --dry_run              # print the commands only
    python fine_tune_all.py --output_root models -- --bf16 --per_device_train_batch_size 32   # more run_qa flags
    python fine_tune_all.py --output_root models --cross_eval           # then the matrix, into models/cross_eval

Each dataset NAME is trained into OUTPUT_ROOT/NAME by `LAUNCHER run_qa.py --dataset NAME --do_train --do_eval`,
with the BERT-base SQuAD recipe as defaults (bert-base-uncased, learning rate 3e-5, 2 epochs, max_seq_length 384,
doc_stride 128, batch 12; `--bf16` on a CPU with bf16 instructions and no GPU, unless the flags after `--` name
--bf16 or --fp16); flags after `--` are passed to run_qa.py last, so they override the defaults.
A dataset whose folder already holds a finished model (qa_run_info.json) is skipped, and an interrupted one
resumes from its last checkpoint; one failed dataset does not stop the others, and the exit status is 1 if any failed,
unless the network is down: then it stops after that dataset (the others would fail the same way), with status 69.
Then it prints the cross_eval.py command for these models (the same datasets from the same files or folders, and
the same window settings), or, with --cross_eval, runs it.

A YAML or JSON config file may come first: its keys are this script's options (`datasets: [squad_v2, newsqa]`,
`train_file: {squad_v2: train.json}` for NAME=FILE pairs, `cross_eval: true`), plus `run_qa:`, a mapping of
run_qa.py options that go before the flags after `--`; flags on the command line override the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
from typing import Any

from huggingface_hub import constants as hub_constants

from qa_transfer.core.errors import ArgumentError
from qa_transfer.core.network import NETWORK_DOWN_EXIT_STATUS, OFFLINE_ALTERNATIVES, hub_unreachable
from qa_transfer.core.precision import cpu_bf16_instructions
from qa_transfer.core.scripts import (
    config_file_argument,
    parse_name_value_pairs,
    read_config_values,
    run_script,
    use_config_values,
)
from qa_transfer.qa.arguments import QAEvalArguments
from qa_transfer.qa.run_info import PAPER_DATASETS, RUN_INFO_FILE

REPO = os.path.dirname(os.path.abspath(__file__))
RECIPE = [
    "--learning_rate", "3e-5", "--num_train_epochs", "2", "--max_seq_length", "384", "--doc_stride", "128",
    "--per_device_train_batch_size", "12", "--save_strategy", "epoch", "--save_total_limit", "1",
    "--logging_steps", "0.05",  # the training loss 20 times per run, whatever its length: loss_curve.png has a curve
]
RUN_QA_KEY = "run_qa"  # a config file's mapping of run_qa.py options


PRECISION_FLAGS = ("--bf16", "--fp16")


def precision_flags(extra: list[str]) -> list[str]:
    """`--bf16` on a machine without a GPU whose CPU has bf16 instructions (CPU autocast, see
    docs/benchmarks.md); nothing otherwise, or when the run_qa.py flags `extra` choose a precision themselves
    (`-- --bf16` would otherwise give run_qa.py `--bf16 --bf16`; `-- --bf16 false` turns it off)."""
    if any(flag.partition("=")[0] in PRECISION_FLAGS for flag in extra):
        return []
    # Without importing torch (this script stays light): a GPU shows as a device node or, on a Mac, is assumed.
    gpu = sys.platform == "darwin" or any(os.path.exists(node) for node in ("/dev/nvidia0", "/dev/kfd", "/dev/dxg"))
    return ["--bf16"] if not gpu and cpu_bf16_instructions() else []


def run_qa_command(args: argparse.Namespace, name: str, output_dir: str, extra: list[str]) -> list[str]:
    launcher = shlex.split(args.launcher)
    if launcher == ["python"]:
        launcher = [sys.executable]
    command = [*launcher, os.path.join(REPO, "run_qa.py"), "--model_name_or_path", args.model_name_or_path,
               "--dataset", name, "--output_dir", output_dir, "--do_train", "--do_eval", *RECIPE,
               *precision_flags(extra)]
    for flag, files in (("--data_dir", args.data_dir), ("--train_file", args.train_file),
                        ("--validation_file", args.validation_file)):
        if name in files:
            command += [flag, files[name]]
    if args.overwrite:  # otherwise run_qa.py resumes an interrupted run from its last checkpoint
        command.append("--overwrite_output_dir")
    return command + extra


def evaluation_flags(extra: list[str]) -> list[str]:
    """The flags among those passed to run_qa.py that cross_eval.py shares (windowing, answers), with their values."""
    shared = {f.name for f in dataclasses.fields(QAEvalArguments)}
    kept: list[str] = []
    keeping = False
    for token in extra:
        if token.startswith("--"):
            keeping = token[2:].partition("=")[0].replace("-", "_") in shared
        if keeping:
            kept.append(token)
    return kept


def cross_eval_arguments(args: argparse.Namespace, evaluation: list[str]) -> list[str]:
    """cross_eval.py's arguments for the models just trained: the same datasets from the same sources (validation
    files, data folders), then `evaluation`, the window flags among those given to run_qa.py."""
    datasets = [f"{name}={args.validation_file[name]}" if name in args.validation_file else name
                for name in args.datasets]
    arguments = ["--models", args.output_root, "--datasets", *datasets]
    data_dirs = [f"{name}={args.data_dir[name]}" for name in args.datasets
                 if name in args.data_dir and name not in args.validation_file]
    if data_dirs:
        arguments += ["--data_dir", *data_dirs]
    return arguments + evaluation


def cross_eval_command(args: argparse.Namespace, extra: list[str]) -> tuple[str, list[str]]:
    """The cross_eval.py command to print, and a note for each dataset it cannot load offline."""
    command = ["python", os.path.relpath(os.path.join(REPO, "cross_eval.py")),
               *cross_eval_arguments(args, evaluation_flags(extra))]
    notes = []
    if hub_constants.HF_HUB_OFFLINE:
        notes = [f"{name}: no local evaluation data; add {name}=FILE to --datasets, or --data_dir {name}=DIR"
                 for name in args.datasets if name not in args.validation_file and name not in args.data_dir]
        return "HF_HUB_OFFLINE=1 " + shlex.join(command), notes
    return shlex.join(command), notes


def run_qa_flags(options: object, path: str) -> list[str]:
    """A config file's `run_qa:` mapping as run_qa.py flags: `{num_train_epochs: 3, bf16: true}` ->
    `--num_train_epochs 3 --bf16 true`; a list gives one value after another."""
    if not isinstance(options, dict):
        raise ArgumentError(f"{path}: {RUN_QA_KEY} holds a mapping of run_qa.py options to values")
    flags: list[str] = []
    for name, value in options.items():
        values = value if isinstance(value, list) else [value]
        flags += [f"--{name}", *(str(item).lower() if isinstance(item, bool) else str(item) for item in values)]
    return flags


def parse_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """This script's options (from a config file first, if given, then the flags) and the run_qa.py flags: the
    config's `run_qa:` ones, then those after `--`."""
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        usage="%(prog)s [CONFIG.yaml|CONFIG.json] [--option VALUE ...] [-- run_qa.py flags]",
    )
    options: list[argparse.Action] = []  # what add_argument returns: the config file is checked against them

    def add(*flags: str, **settings: Any) -> None:
        options.append(parser.add_argument(*flags, **settings))

    add("--output_root", required=True, help="One model folder per dataset is made here.")
    add("--datasets", nargs="+", default=PAPER_DATASETS, help="Dataset names (default: the paper's five).")
    add("--model_name_or_path", default="bert-base-uncased",
        help="The encoder every dataset is fine-tuned from (default: bert-base-uncased).")
    add("--launcher", default="accelerate launch", help="How run_qa.py is started ('python' for one process).")
    add("--data_dir", nargs="*", default=[], help="NAME=DIR: a dataset's official files, offline.")
    add("--train_file", nargs="*", default=[], help="NAME=FILE: train a dataset from a local file.")
    add("--validation_file", nargs="*", default=[], help="NAME=FILE: its evaluation file.")
    add("--overwrite", action="store_true", help="Train again datasets that are already done.")
    add("--cross_eval", action="store_true",
        help="Then run cross_eval.py on the models (into OUTPUT_ROOT/cross_eval) instead of printing it.")
    add("--dry_run", action="store_true", help="Print the commands, run nothing.")
    config = config_file_argument(argv)
    if config is not None:
        values = read_config_values(config, options, {action.dest for action in options} | {RUN_QA_KEY})
        extra = run_qa_flags(values.pop(RUN_QA_KEY, {}), config) + extra
        use_config_values(parser, options, values)
    args = parser.parse_args(argv)
    for flag in ("data_dir", "train_file", "validation_file"):
        setattr(args, flag, parse_name_value_pairs(getattr(args, flag), f"--{flag}"))
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    failed: list[str] = []
    for name in args.datasets:
        output_dir = os.path.join(args.output_root, name)
        if os.path.isfile(os.path.join(output_dir, RUN_INFO_FILE)) and not args.overwrite:
            print(f"[{name}] done already ({output_dir}); --overwrite trains it again", flush=True)
            continue
        command = run_qa_command(args, name, output_dir, extra)
        print(f"[{name}] {shlex.join(command)}", flush=True)
        if args.dry_run:
            continue
        returncode = subprocess.run(command).returncode
        if returncode == 0:
            continue
        print(f"[{name}] FAILED (see the output above)", flush=True)
        failed.append(name)
        # accelerate launch reports every failure as status 1: the hub's reachability tells, asked once here.
        if returncode == NETWORK_DOWN_EXIT_STATUS or (reason := hub_unreachable()) is not None:
            left = args.datasets[args.datasets.index(name) + 1:]
            why = "" if returncode == NETWORK_DOWN_EXIT_STATUS else f" ({reason})"
            print(f"error: the network is down{why}: stopped after {name}"
                  f"{', not trying ' + ', '.join(left) if left else ''}; {OFFLINE_ALTERNATIVES}", file=sys.stderr)
            return NETWORK_DOWN_EXIT_STATUS
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.dry_run:
        if args.cross_eval:  # the window flags are picked from run_qa.py's options, which --dry_run does not load
            print(f"[cross_eval] then: cross_eval.py {shlex.join(cross_eval_arguments(args, []))} "
                  "with the window flags among the run_qa.py flags")
        return 0
    if args.cross_eval:
        command = [sys.executable, os.path.join(REPO, "cross_eval.py"),
                   *cross_eval_arguments(args, evaluation_flags(extra))]
        print(f"[cross_eval] {shlex.join(command)}", flush=True)
        return 0 if subprocess.run(command).returncode == 0 else 1
    command, notes = cross_eval_command(args, extra)
    print(f"next: {command}")
    for note in notes:
        print(f"  ({note})")
    return 0


if __name__ == "__main__":
    run_script(main)
