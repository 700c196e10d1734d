"""The scripts' --help pages against stored snapshots: script_args.py shapes them through argparse's private
formatter and HfArgumentParser's dataclass hook, which a library upgrade can change without an error. A changed page
fails here; after checking the new page, rewrite the snapshots with UPDATE_HELP_SNAPSHOTS=1."""

import os
import subprocess
import sys

import pytest
from shared import REPO

SNAPSHOTS = REPO / "tests" / "fixtures" / "help"


def help_page(script: str) -> str:
    env = {**os.environ, "COLUMNS": "120", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, script, "--help"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("script", ["run_qa.py", "run_classification.py", "cross_eval.py"])
def test_the_help_page_is_the_stored_one(script):
    page = help_page(script)
    snapshot = SNAPSHOTS / f"{script.removesuffix('.py')}.txt"
    if os.environ.get("UPDATE_HELP_SNAPSHOTS") == "1":
        snapshot.write_text(page, encoding="utf-8")
    assert page == snapshot.read_text(encoding="utf-8")
