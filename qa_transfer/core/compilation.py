"""`--torch_compile` (the Trainer's flag, with `--torch_compile_backend` / `--torch_compile_mode`) on any machine:
a few batch shapes, and a plain run where this machine cannot compile.

Under dynamic padding every batch is as long as its longest window, so nearly every batch has a new length and a
compiler meets a new shape a batch. With `--torch_compile` the collators pad each batch to a multiple of
COMPILE_PAD_MULTIPLE tokens instead: at most max_seq_length / 64 lengths (6 at 384 tokens), so the model compiles
a few times and reuses those graphs. Where compiling fails (no C++ compiler for inductor, a backend this PyTorch
build lacks, a Python that dynamo does not support) `check_torch_compile` says so in one log line and the run goes
on without compiling, rather than failing in its first step with a compiler's traceback.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import TrainingArguments

logger = logging.getLogger("qa_transfer.core.compilation")

# A multiple of 64 keeps the distinct lengths few (6 at 384 tokens) and costs about 32 padding tokens a batch.
COMPILE_PAD_MULTIPLE = 64


def padding_multiple(training_args: TrainingArguments, otherwise: int | None) -> int | None:
    """The multiple that a collator pads each batch's length to: COMPILE_PAD_MULTIPLE under `--torch_compile`
    where this machine compiles (few shapes, few compilations), `otherwise` without it."""
    return COMPILE_PAD_MULTIPLE if check_torch_compile(training_args) else otherwise


@functools.cache
def compile_failure(backend: str | None, mode: str | None) -> str | None:
    """Why torch.compile with this backend and mode fails on this machine (one line), or None when it compiles a
    small function (for inductor on a CPU: one C++ kernel, a few seconds)."""
    try:
        import torch

        compiled = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2.0, backend=backend or "inductor",
                                 mode=mode, dynamic=False)
        compiled(torch.ones(4))
        torch._dynamo.reset()  # the probe's graph is not the model's: drop it from dynamo's caches
    except Exception as error:
        text = str(error).strip().splitlines()
        return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
    return None


def check_torch_compile(training_args: TrainingArguments) -> bool:
    """Under `--torch_compile`, whether this machine compiles with the run's backend and mode; where it does not,
    one warning and `torch_compile` is turned off in `training_args`, so the Trainer runs the model as it is.
    True when the run will compile."""
    if not training_args.torch_compile:
        return False
    failure = compile_failure(training_args.torch_compile_backend, training_args.torch_compile_mode)
    if failure is None:
        return True
    logger.warning("--torch_compile: torch.compile (backend %s) fails on this machine (%s): running without it",
                   training_args.torch_compile_backend, failure)
    # The Trainer hands the backend and mode to accelerate, which compiles whenever a backend is set
    training_args.torch_compile = False
    training_args.torch_compile_backend = None
    training_args.torch_compile_mode = None
    return False
