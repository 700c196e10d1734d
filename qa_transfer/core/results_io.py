"""Writing result files atomically, so that a killed or failed run never leaves half a file.

Every result file (JSON, text, CSV, PNG) is written into a hidden temporary file beside its target, flushed to
disk, and renamed over the target: a reader sees the previous file or the new one, never a mix. A process killed
mid-write leaves at most a hidden `.<name>.*.tmp` file, which nothing reads. A write that fails (a full disk,
a size limit) removes its temporary file and raises one ResultsWriteError naming the target.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from qa_transfer.core.errors import ResultsWriteError


def _current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def default_file_mode() -> int:
    """The mode that `open()` gives a new file under this process's umask (0644 under umask 022)."""
    return 0o666 & ~_current_umask()


def share_private_files(folder: str | os.PathLike) -> None:
    """Give the files of `folder` that a writer made private (mode 0600, as a temporary file renamed into place
    gets: the model weights) the mode of every other output, so that a model is as readable as its results."""
    mode = default_file_mode()
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False) and entry.stat().st_mode & 0o777 == 0o600 and mode != 0o600:
            os.chmod(entry.path, mode)


@contextmanager
def atomic_output(path: str | os.PathLike, binary: bool = False) -> Iterator[IO]:
    """A file handle whose content replaces `path` in one rename once the block ends without an error."""
    path = Path(path)
    existed = path.exists()
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp_name, default_file_mode())  # mkstemp makes the file private; give it the usual mode
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # a full disk can show only here, and the rename must not outrun the data
        os.replace(tmp_name, path)
    except BaseException as err:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
        if isinstance(err, OSError) and not isinstance(err, ResultsWriteError):
            kept = f"the previous {path.name} is unchanged" if existed else "nothing was written"
            error = ResultsWriteError(f"could not write {path}: {err.strerror or err} ({kept})")
            error.errno = err.errno
            raise error from err
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and an atomic rename."""
    with atomic_output(path) as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int = 4) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=False, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; a malformed file is a ValueError naming it."""
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: {err}") from None
