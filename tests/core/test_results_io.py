"""results_io: atomic writes leave the usual file mode (what the umask allows), not the temporary file's private one."""

import os

import pytest

from qa_transfer.core.results_io import atomic_output, write_json_atomic, write_text_atomic


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_get_the_mode_the_umask_allows(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "results.json", {"f1": 1.0})
        write_text_atomic(tmp_path / "matrix.md", "# matrix\n")
        with atomic_output(tmp_path / "plot.png", binary=True) as handle:
            handle.write(b"\x89PNG")
    finally:
        os.umask(previous)
    for name in ("results.json", "matrix.md", "plot.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert sorted(os.listdir(tmp_path)) == ["matrix.md", "plot.png", "results.json"]  # no temporary file left
