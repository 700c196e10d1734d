"""The scripts' --help pages against stored snapshots: core/arguments.py shapes them through argparse's private
formatter and HfArgumentParser's dataclass hook, which a library upgrade can change without an error. A changed page
fails here; after checking the new page, rewrite the snapshots with UPDATE_HELP_SNAPSHOTS=1."""

import contextlib
import io
import os

import pytest
from harness import run_script_main
from shared import REPO

import cross_eval
import predict
import run_classification
import run_qa

SNAPSHOTS = REPO / "tests" / "fixtures" / "help"
SCRIPTS = {"run_qa": run_qa, "run_classification": run_classification, "cross_eval": cross_eval, "predict": predict}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_help_page_is_the_stored_one(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # argparse wraps to the terminal's width
    page = io.StringIO()
    with contextlib.redirect_stdout(page), pytest.raises(SystemExit) as exit_info:
        run_script_main(SCRIPTS[name], ["--help"], tiny=False)  # sys.argv[0], the usage line's name, is the script
    assert exit_info.value.code == 0
    snapshot = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_HELP_SNAPSHOTS") == "1":
        snapshot.write_text(page.getvalue(), encoding="utf-8")
    assert page.getvalue() == snapshot.read_text(encoding="utf-8")
