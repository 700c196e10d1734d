"""Mixed precision without a GPU: `--bf16` on a CPU with bf16 instructions runs the model under bf16 autocast.

The Trainer refuses `--bf16` on a machine without a GPU unless `--use_cpu` is also given ("Your setup doesn't
support bf16/gpu"). A user who asks for bf16 on a CPU means bf16 autocast on that CPU, which many server CPUs run
about twice as fast as fp32 (AVX512-BF16, AMX). `cpu_bf16_request` is called by the argument parser before the
Trainer's arguments are built: on a CPU that has the instructions it turns `use_cpu` on (the Trainer then autocasts
on the CPU); on one that has not, it is a one-line ArgumentError rather than a silent fallback to fp32 or a run
that emulates bf16 at a fraction of fp32's speed. With a GPU nothing changes.
"""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

from qa_transfer.core.errors import ArgumentError

if TYPE_CHECKING:
    from transformers import TrainingArguments

# /proc/cpuinfo flags of bf16 matrix instructions, fastest first: Intel AMX, AVX512-BF16 (Intel and AMD), Arm's BF16.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (x86 `flags`, Arm `Features`); empty where /proc/cpuinfo cannot be read."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def cpu_bf16_instructions(cpuinfo_path: str = "/proc/cpuinfo") -> str | None:
    """The CPU's bf16 instruction set by its flag name (`amx_bf16`, `avx512_bf16`, `bf16`), or None."""
    flags = cpu_flags(cpuinfo_path)
    if not flags and platform.system() == "Darwin" and platform.machine() == "arm64":
        return "arm64"  # Apple silicon from M2 on; torch's CPU autocast falls back to plain kernels on M1
    return next((flag for flag in BF16_CPU_FLAGS if flag in flags), None)


def cpu_bf16_request(namespace: Any, has_accelerator: bool, instructions: str | None) -> bool:
    """Whether the parsed flags (`namespace`, before the Trainer's arguments are built) ask for bf16 on the CPU:
    True when they ask for bf16 (`--bf16` or `--bf16_full_eval`) and either there is no accelerator or
    `--use_cpu` is given. An ArgumentError when that CPU has no bf16 instructions."""
    wants_bf16 = bool(getattr(namespace, "bf16", False) or getattr(namespace, "bf16_full_eval", False))
    if not wants_bf16 or (has_accelerator and not getattr(namespace, "use_cpu", False)):
        return False
    if instructions is None:
        where = "--use_cpu was given" if has_accelerator else "no GPU was found"
        raise ArgumentError(
            f"--bf16: {where} and this CPU has no bf16 instructions (AVX512-BF16, AMX-BF16 or Arm BF16), so bf16 "
            "would run far slower than fp32: leave --bf16 out to train in fp32"
        )
    return True


def precision_name(training_args: TrainingArguments) -> str:
    """The arithmetic a run uses, for logs and result files: `bf16 (CPU autocast)`, `bf16`, `fp16` or `fp32`."""
    on_cpu = training_args.use_cpu or training_args.device.type == "cpu"
    if training_args.bf16:
        return "bf16 (CPU autocast)" if on_cpu else "bf16"
    if training_args.fp16:
        return "fp16"
    if training_args.bf16_full_eval or training_args.fp16_full_eval:
        return f"fp32 (evaluation in {'bf16' if training_args.bf16_full_eval else 'fp16'})"
    return "fp32"


def keep_head_in_fp32(model: Any, training_args: TrainingArguments,
                      head_names: tuple[str, ...] = ("qa_outputs", "classifier")) -> None:
    """Under mixed precision, run the model's output head (QA span logits, classifier logits) in fp32.

    The encoder's work is where mixed precision pays; the head is one small matrix product. In bf16 a logit of
    about 10 is rounded to a multiple of 0.0625, which ties span scores and coarsens the null-score difference
    that decides "no answer"; in fp32 the head costs nothing measurable. Weights and their names stay as they
    are (the instance's `forward` is wrapped), so checkpoints are unchanged."""
    if not (training_args.bf16 or training_args.fp16):  # not --bf16_full_eval: it casts the weights themselves
        return
    import torch

    for name in head_names:
        head = getattr(model, name, None)
        if head is None or getattr(head, "_fp32_head", False):
            continue
        plain_forward = head.forward

        def fp32_forward(hidden_states, *args, _forward=plain_forward, **kwargs):
            with torch.autocast(device_type=hidden_states.device.type, enabled=False):
                return _forward(hidden_states.float(), *args, **kwargs)

        head.forward = fp32_forward
        head._fp32_head = True
