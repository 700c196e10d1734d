"""Running a script under `accelerate launch` on CPU processes (gloo), for the parity tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from shared import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_launch(script: str, args: list, processes: int, timeout: int = 300) -> subprocess.CompletedProcess:
    """`accelerate launch --cpu --num_processes N REPO/script args...`, offline, one thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(REPO / script), *map(str, args)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
