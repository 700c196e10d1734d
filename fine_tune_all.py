#!/usr/bin/env python
"""Fine-tune one QA model per dataset with run_qa.py: the rows of the cross-dataset matrix (cross_eval.py).

    python fine_tune_all.py --output_root models                       # the paper's five datasets, from the hub
    python fine_tune_all.py --output_root models --datasets squad_v2 newsqa --data_dir newsqa=~/data/newsqa
    python fine_tune_all.py --output_root models --dry_run              # print the commands only
    python fine_tune_all.py --output_root models -- --bf16 --per_device_train_batch_size 32   # more run_qa flags

Each dataset NAME is trained into OUTPUT_ROOT/NAME by `LAUNCHER run_qa.py --dataset NAME --do_train --do_eval`,
with the BERT-base SQuAD recipe as defaults (bert-base-uncased, learning rate 3e-5, 2 epochs, max_seq_length 384,
doc_stride 128, batch 12); flags after `--` are passed to run_qa.py last, so they override the defaults.
A dataset whose folder already holds a finished model (qa_run_info.json) is skipped, and an interrupted one
resumes from its last checkpoint; one failed dataset does not stop the others, and the exit status is 1 if any failed.
Then: `python cross_eval.py --models OUTPUT_ROOT`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

from cross_eval import PAPER_DATASETS
from qa_data import parse_name_value_pairs
from run_qa import RUN_INFO_FILE

REPO = os.path.dirname(os.path.abspath(__file__))
RECIPE = [
    "--learning_rate", "3e-5", "--num_train_epochs", "2", "--max_seq_length", "384", "--doc_stride", "128",
    "--per_device_train_batch_size", "12", "--save_strategy", "epoch", "--save_total_limit", "1",
]


def run_qa_command(args: argparse.Namespace, name: str, output_dir: str, extra: list[str]) -> list[str]:
    launcher = shlex.split(args.launcher)
    if launcher == ["python"]:
        launcher = [sys.executable]
    command = [*launcher, os.path.join(REPO, "run_qa.py"), "--model_name_or_path", args.model_name_or_path,
               "--dataset", name, "--output_dir", output_dir, "--do_train", "--do_eval", *RECIPE]
    for flag, files in (("--data_dir", args.data_dir), ("--train_file", args.train_file),
                        ("--validation_file", args.validation_file)):
        if name in files:
            command += [flag, files[name]]
    if args.overwrite:  # otherwise run_qa.py resumes an interrupted run from its last checkpoint
        command.append("--overwrite_output_dir")
    return command + extra


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", required=True, help="One model folder per dataset is made here.")
    parser.add_argument("--datasets", nargs="+", default=PAPER_DATASETS, help="Dataset names (default: the paper's five).")
    parser.add_argument("--model_name_or_path", default="bert-base-uncased")
    parser.add_argument("--launcher", default="accelerate launch", help="How run_qa.py is started ('python' for one process).")
    parser.add_argument("--data_dir", nargs="*", default=[], help="NAME=DIR: a dataset's official files, offline.")
    parser.add_argument("--train_file", nargs="*", default=[], help="NAME=FILE: train a dataset from a local file.")
    parser.add_argument("--validation_file", nargs="*", default=[], help="NAME=FILE: its evaluation file.")
    parser.add_argument("--overwrite", action="store_true", help="Train again datasets that are already done.")
    parser.add_argument("--dry_run", action="store_true", help="Print the commands, run nothing.")
    args = parser.parse_args(argv)
    try:
        for flag in ("data_dir", "train_file", "validation_file"):
            setattr(args, flag, parse_name_value_pairs(getattr(args, flag), f"--{flag}"))
    except ValueError as err:
        parser.error(str(err))

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
        if subprocess.run(command).returncode != 0:
            print(f"[{name}] FAILED (see the output above)", flush=True)
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(f"next: python cross_eval.py --models {args.output_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
