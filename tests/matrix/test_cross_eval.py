"""cross_eval.py and fine_tune_all.py on tiny BERTs: a 2x2 matrix with every file, cells equal to
run_qa.py --do_eval, resuming, failures that leave the other cells running, and 2-process parity."""

import contextlib
import io
import json
import math
import shlex
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
from distributed import accelerate_launch
from harness import TINY_RUN, run_script_main, script_arguments
from shared import REPO, SMALL_WINDOWS
from tiny_models import save_tiny_bert

import cross_eval
import fine_tune_all
import run_qa
from qa_transfer.core.errors import ArgumentError, ProbeError, UsageError
from qa_transfer.core.scripts import run_script
from qa_transfer.matrix import report
from qa_transfer.qa.scores import SCORES_FILE

SAMPLE = REPO / "examples" / "qa_sample"
NEWS = REPO / "examples" / "news_sample"
# Two evaluation sets from local files: SQuAD-format with unanswerable questions, and flat JSONL, all answerable.
LOCAL_DATASETS = ["--datasets", f"squad_v2={SAMPLE / 'dev.json'}", f"newsqa={NEWS / 'dev.jsonl'}"]


def run_cross_eval(monkeypatch, models, out, *extra) -> int:
    argv = ["--models", models, "--output_dir", out, "--per_device_eval_batch_size", "4", *SMALL_WINDOWS,
            *LOCAL_DATASETS, *extra]
    return run_script_main(cross_eval, argv)


def run_qa_in_this_process(command: list[str]) -> subprocess.CompletedProcess:
    """fine_tune_all.py's `python run_qa.py ...` run as run_qa.main(...) here: the same run without starting an
    interpreter and loading torch again for each dataset."""
    assert command[:2] == [sys.executable, str(REPO / "run_qa.py")], command
    run_script_main(run_qa, command[2:], tiny=False)
    return subprocess.CompletedProcess(command, 0)


@pytest.fixture(scope="module")
def models_dir(tiny_qa_model, tmp_path_factory):
    """Two tiny models fine-tuned by fine_tune_all.py (run_qa.py underneath) on the two local datasets, plus a
    folder that is a model without a QA head and one that is no model at all."""
    root = tmp_path_factory.mktemp("models")
    argv = [
        "--output_root", str(root), "--launcher", "python",
        "--datasets", "squad_v2", "newsqa", "--model_name_or_path", str(tiny_qa_model),
        "--train_file", f"squad_v2={SAMPLE / 'train.json'}", f"newsqa={NEWS / 'train.jsonl'}",
        "--validation_file", f"squad_v2={SAMPLE / 'dev.json'}", f"newsqa={NEWS / 'dev.jsonl'}",
        "--", *TINY_RUN, "--num_train_epochs", "2", "--learning_rate", "1e-3", "--seed", "3",
        "--save_strategy", "no", *SMALL_WINDOWS,
    ]
    mp = pytest.MonkeyPatch()
    printed = io.StringIO()
    try:
        mp.setattr(fine_tune_all.subprocess, "run", run_qa_in_this_process)
        mp.chdir(REPO)  # the printed cross_eval.py command is relative to the working folder
        with contextlib.redirect_stdout(printed):
            assert fine_tune_all.main(argv) == 0
    finally:
        mp.undo()
    (root.parent / f"{root.name}.stdout").write_text(printed.getvalue())
    save_tiny_bert(root / "base_encoder", task="cls")  # a model, but without a question-answering head
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a model")
    return root


@pytest.fixture(scope="module")
def matrix(models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("matrix")
    mp = pytest.MonkeyPatch()
    try:
        status = run_cross_eval(mp, models_dir, out)
    finally:
        mp.undo()
    return out, status


@pytest.mark.slow
def test_fine_tune_all_records_each_dataset_and_skips_finished_ones(models_dir, capsys):
    for name in ("squad_v2", "newsqa"):
        info = json.loads((models_dir / name / run_qa.RUN_INFO_FILE).read_text())
        assert info["dataset"] == name
        # The recipe logs the training loss often enough for loss_curve.png to draw it, even on a short run.
        history = json.loads((models_dir / name / "trainer_state.json").read_text())["log_history"]
        assert sum("loss" in entry for entry in history) >= 5, name
    assert fine_tune_all.main(["--output_root", str(models_dir), "--launcher", "python",
                               "--datasets", "squad_v2", "newsqa", "--dry_run"]) == 0
    assert capsys.readouterr().out.count("done already") == 2


def test_the_recipe_comes_first_so_extra_flags_override_it(tmp_path):
    args = fine_tune_all.argparse.Namespace(
        launcher="accelerate launch", model_name_or_path="bert-base-uncased", data_dir={"quac": "/data/quac"},
        train_file={}, validation_file={}, overwrite=False)
    command = fine_tune_all.run_qa_command(args, "quac", str(tmp_path / "quac"), ["--num_train_epochs", "3"])
    assert command[:2] == ["accelerate", "launch"] and command[-2:] == ["--num_train_epochs", "3"]
    assert command.index("--learning_rate") < command.index("--data_dir") < len(command) - 2
    assert "--overwrite_output_dir" not in command  # run_qa.py resumes from the folder's checkpoints by itself
    args.overwrite = True
    assert "--overwrite_output_dir" in fine_tune_all.run_qa_command(args, "quac", str(tmp_path / "quac"), [])


@pytest.mark.slow
def test_a_2x2_matrix_with_every_file(matrix):
    out, status = matrix
    assert status == 1, "the model folder without a QA head counts as a failure"
    for name in ("matrix.json", "matrix.csv", "matrix.md", "heatmap.png"):
        assert (out / name).is_file(), name
    result = json.loads((out / "matrix.json").read_text())
    assert result["rows"] == ["squad_v2", "newsqa"] and result["columns"] == ["squad_v2", "newsqa"]
    for row in result["rows"]:
        for column in result["columns"]:
            cell = result["cells"][row][column]
            assert {"exact", "f1", "total", "loss", "samples", "windows"} <= set(cell["metrics"]), (row, column)
            for name in ("eval_predictions.json", "eval_nbest_predictions.json", "metrics.json"):
                assert (out / "cells" / row / column / name).is_file(), (row, column, name)
    # Every cell of the model that can abstain has its null odds, the all-answerable set's included.
    for column in ("squad_v2", "newsqa"):
        assert (out / "cells" / "squad_v2" / column / "eval_null_odds.json").is_file(), column
    squad_cell = result["cells"]["newsqa"]["squad_v2"]["metrics"]
    assert squad_cell["total"] == 14 and "NoAns_f1" in squad_cell and "best_f1" in squad_cell
    # The squad_v2-trained model keeps abstaining on the all-answerable set (no NoAns questions there).
    assert result["cells"]["squad_v2"]["newsqa"]["version_2_with_negative"] is True
    assert result["cells"]["newsqa"]["newsqa"]["version_2_with_negative"] is False
    assert result["models"]["squad_v2"]["train_samples"] == 42
    # every model and column records the conversion behind its data (here SQuAD-format files, made elsewhere)
    assert {result["models"][row]["conversion"] for row in result["rows"]} == {"squad_format_file"}
    assert {result["datasets"][column]["conversion"] for column in result["columns"]} == {"squad_format_file"}
    failures = result["failures"]
    assert len(failures) == 1 and "base_encoder" in failures[0] and "no question-answering head" in failures[0]

    csv_lines = (out / "matrix.csv").read_text().splitlines()
    assert csv_lines[0] == "fine-tuned on \\ evaluated on,squad_v2,newsqa" and len(csv_lines) == 3
    f1 = result["cells"]["squad_v2"]["newsqa"]["metrics"]["f1"]
    assert csv_lines[1].split(",")[2] == f"{f1:.2f}"
    markdown = (out / "matrix.md").read_text()
    in_domain = result["cells"]["squad_v2"]["squad_v2"]["metrics"]["f1"]
    assert f"**{in_domain:.1f}**" in markdown
    assert f"squad_v2 -> newsqa: f1 {f1:.1f} vs {in_domain:.1f} in-domain ({f1 - in_domain:+.1f}" in markdown


@pytest.mark.slow
def test_each_cell_equals_run_qa_do_eval(matrix, models_dir, tmp_path):
    out, _ = matrix
    cell = json.loads((out / "cells" / "newsqa" / "squad_v2" / "metrics.json").read_text())
    eval_out = tmp_path / "run_qa_eval"
    run_script_main(run_qa, ["--model_name_or_path", models_dir / "newsqa", "--validation_file", SAMPLE / "dev.json",
                             "--do_eval", "--output_dir", eval_out, "--per_device_eval_batch_size", "4",
                             *SMALL_WINDOWS])
    reference = json.loads((eval_out / "eval_results.json").read_text())
    for key in ("exact", "f1", "HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh", "total", "samples", "windows"):
        assert cell["metrics"][key] == reference[f"eval_{key}"], key
    assert cell["metrics"]["loss"] == pytest.approx(reference["eval_loss"], rel=1e-6)
    for name in ("eval_predictions.json", "eval_null_odds.json"):
        assert json.loads((out / "cells" / "newsqa" / "squad_v2" / name).read_text()) == \
            json.loads((eval_out / name).read_text()), name


@pytest.mark.slow
def test_resume_recomputes_only_unfinished_cells(matrix, models_dir, tmp_path, monkeypatch):
    out = tmp_path / "resume"
    shutil.copytree(matrix[0], out)
    stored = {path: path.stat().st_mtime_ns for path in out.glob("cells/*/*/metrics.json")}
    assert len(stored) == 4
    interrupted = out / "cells" / "newsqa" / "newsqa"
    (interrupted / "metrics.json").unlink()  # stopped after the predictions, before the cell was finished
    before = json.loads((matrix[0] / "cells" / "newsqa" / "newsqa" / "metrics.json").read_text())
    assert run_cross_eval(monkeypatch, models_dir, out) == 1
    for path, mtime in stored.items():
        if path.parent != interrupted:
            assert path.stat().st_mtime_ns == mtime, f"{path} was recomputed"
    again = json.loads((interrupted / "metrics.json").read_text())
    assert again["metrics"]["f1"] == before["metrics"]["f1"]
    # Other settings are other cells; --overwrite recomputes everything.
    assert run_cross_eval(monkeypatch, models_dir, out, "--max_eval_samples", "5", "--overwrite") == 1
    result = json.loads((out / "matrix.json").read_text())
    assert all(cell["metrics"]["samples"] == 5 for row in result["cells"].values() for cell in row.values())
    assert all(path.stat().st_mtime_ns != mtime for path, mtime in stored.items())


@pytest.mark.slow
def test_each_model_loads_once_and_each_dataset_is_windowed_once_per_tokenizer(models_dir, tmp_path, monkeypatch):
    """A row's model loads for its first computed cell only, and the two rows, fine-tuned from one encoder, share
    its tokenizer and so each dataset's windows; a rerun whose cells are all stored loads no model."""
    loads, windowings = [], []
    load, split = cross_eval.AutoModelForQuestionAnswering.from_pretrained, cross_eval.window_split

    def counted_load(path, **options):
        loads.append(path)
        return load(path, **options)

    def counted_split(*args, **kwargs):
        windowings.append(kwargs["desc"])
        return split(*args, **kwargs)

    monkeypatch.setattr(cross_eval, "AutoModelForQuestionAnswering", SimpleNamespace(from_pretrained=counted_load))
    monkeypatch.setattr(cross_eval, "window_split", counted_split)
    out = tmp_path / "counted"
    # 1: the folder without a QA head
    assert run_cross_eval(monkeypatch, models_dir, out, "--max_eval_samples", "5") == 1
    assert sorted(loads) == [str(models_dir / "newsqa"), str(models_dir / "squad_v2")]
    assert sorted(windowings) == ["Windowing newsqa", "Windowing squad_v2"]
    loads.clear()
    assert run_cross_eval(monkeypatch, models_dir, out, "--max_eval_samples", "5") == 1
    assert loads == []


@pytest.mark.slow
def test_bad_datasets_fail_their_column_and_the_other_cells_run(models_dir, tmp_path, capsys):
    out = tmp_path / "bad"
    argv = ["--models", models_dir / "squad_v2", "--output_dir", out, *SMALL_WINDOWS, "--datasets", "no_such_set",
            f"newsqa={tmp_path / 'missing.jsonl'}", f"sample={SAMPLE / 'dev.json'}"]
    assert run_script_main(cross_eval, argv) == 1
    result = json.loads((out / "matrix.json").read_text())
    assert result["rows"] == ["squad_v2"], "one model directory given directly is the one row"
    cells = result["cells"]["squad_v2"]
    assert "unknown dataset 'no_such_set'" in cells["no_such_set"]["error"]
    assert "missing.jsonl: no such file" in cells["newsqa"]["error"]
    assert cells["sample"]["metrics"]["total"] == 14
    assert len(result["failures"]) == 2
    assert "no_such_set" in (out / "matrix.md").read_text()


def test_no_usable_model_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    argv = ["--models", str(tmp_path / "empty"), "--report_to", "none"]
    with pytest.raises(UsageError) as error:
        cross_eval.main(argv)
    assert str(error.value) == f"no usable model directory under {tmp_path / 'empty'}"
    with pytest.raises(SystemExit) as exit_info:  # the entry point prints it as one line and exits with status 1
        run_script(cross_eval.main, argv)
    assert exit_info.value.code == f"error: no usable model directory under {tmp_path / 'empty'}"


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_fill_the_same_cells(models_dir, tmp_path):
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        args = ["--models", models_dir, "--output_dir", out, "--per_device_eval_batch_size", "3", *SMALL_WINDOWS,
                "--datasets", f"squad_v2={SAMPLE / 'dev.json'}"]
        done = accelerate_launch("cross_eval.py", script_arguments(args), processes)
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # 1: the folder without a QA head
        outputs[processes] = out
    for row in ("squad_v2", "newsqa"):
        one, two = (json.loads((outputs[p] / "cells" / row / "squad_v2" / "metrics.json").read_text()) for p in (1, 2))
        squad_keys = [k for k in one["metrics"]
                      if not k.endswith(("runtime", "per_second", "loss", "preparation_time"))]
        assert {k: one["metrics"][k] for k in squad_keys} == {k: two["metrics"][k] for k in squad_keys}
        for name in ("eval_predictions.json", "eval_null_odds.json"):
            paths = [outputs[p] / "cells" / row / "squad_v2" / name for p in (1, 2)]
            assert json.loads(paths[0].read_text()) == json.loads(paths[1].read_text())


def test_a_bad_argument_is_one_clear_error(tmp_path):
    with pytest.raises(ArgumentError, match="^--metric must be one of exact, f1"):
        cross_eval.main(["--models", str(tmp_path), "--metric", "accuracy"])
    with pytest.raises(ArgumentError, match="^--datasets names 'squad_v2' twice"):
        cross_eval.main(["--models", str(tmp_path), "--datasets", "squad_v2", f"squad_v2={SAMPLE / 'dev.json'}"])


def test_hasans_of_a_fully_answerable_set_is_its_score():
    answerable_only = {"exact": 40.0, "f1": 50.0, "total": 10}
    assert report.cell_value(answerable_only, "HasAns_f1") == 50.0
    mixed = {"exact": 40.0, "f1": 50.0, "HasAns_f1": 30.0, "NoAns_total": 4}
    assert report.cell_value(mixed, "HasAns_f1") == 30.0
    assert math.isnan(report.cell_value({"f1": 50.0, "NoAns_total": 4}, "HasAns_f1"))


@pytest.mark.slow
def test_rows_follow_the_column_order_and_unusable_folders_say_why(models_dir, tmp_path):
    rows, skipped = cross_eval.discover_models(str(models_dir), str(tmp_path / "out"), ["newsqa", "squad_v2"])
    assert [row.label for row in rows] == ["newsqa", "squad_v2"]
    assert [row.fine_tuned_on for row in rows] == ["newsqa", "squad_v2"]
    assert skipped == [(str(models_dir / "base_encoder"),
                        "no question-answering head (architectures: BertForSequenceClassification)")]


@pytest.mark.slow
def test_probes_are_cells_with_their_own_report_and_resume(models_dir, matrix, tmp_path, monkeypatch):
    out = tmp_path / "probes"
    shutil.copytree(matrix[0], out)  # the unprobed cells are stored: a probe run reuses them
    stored = {path: path.stat().st_mtime_ns for path in out.glob("cells/*/*/metrics.json")}
    probes = ["--probes", "shuffled_context", "question_prefix:2", "negation"]
    assert run_cross_eval(monkeypatch, models_dir, out, *probes) == 1  # 1: the folder without a QA head
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in stored.items()), "unprobed cells recomputed"
    result = json.loads((out / "matrix.json").read_text())
    assert result["columns"] == ["squad_v2", "newsqa"], "probed sets are no columns of the matrix"
    assert set(result["cells"]["squad_v2"]) == {"squad_v2", "newsqa"}
    assert list(result["probes"]) == ["shuffled_context", "question_prefix:2", "negation"]
    for probe, probe_result in result["probes"].items():
        for row in ("squad_v2", "newsqa"):
            for dataset in ("squad_v2", "newsqa"):
                cell = probe_result["cells"][row][dataset]
                assert cell["settings"]["probe"] == probe
                unprobed = result["cells"][row][dataset]["metrics"]["f1"]
                assert probe_result["change"][row][dataset] == pytest.approx(cell["metrics"]["f1"] - unprobed)
                assert 0 <= probe_result["same_predictions"][row][dataset] <= 100
    shuffled = result["probes"]["shuffled_context"]["cells"]["newsqa"]["squad_v2"]["metrics"]
    assert (shuffled["total"] == 14
            and shuffled["HasAns_total"] == result["cells"]["newsqa"]["squad_v2"]["metrics"]["HasAns_total"])
    # Negation keeps the answerable questions that have an auxiliary verb, all of them now unanswerable.
    negated = result["probes"]["negation"]["cells"]["squad_v2"]["newsqa"]
    assert ("HasAns_total" not in negated["metrics"]
            and negated["metrics"]["NoAns_total"] == negated["metrics"]["total"] > 0)
    assert negated["version_2_with_negative"] is True
    predictions = json.loads((out / "cells" / "squad_v2" / "newsqa_negation" / "eval_predictions.json").read_text())
    assert len(predictions) == negated["metrics"]["total"]
    report = (out / "probes.md").read_text()
    for probe in ("## shuffled_context", "## question_prefix:2", "## negation"):
        assert probe in report
    change = result["probes"]["question_prefix:2"]["change"]["squad_v2"]["newsqa"]
    assert f"({change:+.1f})" in report
    assert (out / "probes.png").is_file()

    # A rerun computes only the cells of a probe it has not seen.
    stored = {path: path.stat().st_mtime_ns for path in out.glob("cells/*/*/metrics.json")}
    assert len(stored) == 4 * 4
    assert run_cross_eval(monkeypatch, models_dir, out, "--probes", "negation", "filler") == 1
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in stored.items())
    assert len(list(out.glob("cells/*/*_filler/metrics.json"))) == 4
    assert list(json.loads((out / "matrix.json").read_text())["probes"]) == ["negation", "filler"]


def test_a_bad_probe_is_one_clear_error(tmp_path):
    with pytest.raises(ProbeError, match="^unknown probe 'scrambled'"):
        cross_eval.main(["--models", str(tmp_path), "--probes", "scrambled"])


def test_fine_tune_all_passes_the_random_label_fraction_to_run_qa(tmp_path, capsys):
    assert fine_tune_all.main(["--output_root", str(tmp_path), "--launcher", "python", "--datasets", "squad_v2",
                               "--dry_run", "--", "--random_label_fraction", "0.5"]) == 0
    assert capsys.readouterr().out.strip().endswith("--random_label_fraction 0.5")


@pytest.mark.parametrize("flags", [["--bf16"], ["--bf16", "false"], ["--fp16=true"], []])
def test_fine_tune_all_adds_its_bf16_only_when_the_flags_choose_no_precision(flags, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(fine_tune_all, "cpu_bf16_instructions", lambda: "avx512_bf16")
    monkeypatch.setattr(fine_tune_all.os.path, "exists", lambda path: False)  # no GPU device node
    assert fine_tune_all.main(["--output_root", str(tmp_path), "--datasets", "squad_v2", "--dry_run", "--",
                               *flags]) == 0
    command = shlex.split(capsys.readouterr().out.splitlines()[0].split("] ", 1)[1])
    precision = [token for token in command if token.partition("=")[0] in ("--bf16", "--fp16")]
    assert precision == ([flag for flag in flags if flag.startswith("--")] or ["--bf16"])
    assert command[-len(flags):] == flags if flags else command[-1] == "--bf16"


def test_a_bad_name_value_pair_is_one_clear_error(tmp_path):
    with pytest.raises(ArgumentError, match="^--data_dir takes NAME=VALUE pairs, got 'quac'"):
        fine_tune_all.main(["--output_root", str(tmp_path), "--data_dir", "quac", "--dry_run"])


REPORTS = ("matrix.json", "matrix.csv", "matrix.md", "heatmap.png")


@pytest.mark.slow
def test_the_next_hint_of_fine_tune_all_is_a_command_that_works(models_dir, tmp_path):
    printed = (models_dir.parent / f"{models_dir.name}.stdout").read_text()
    hint = next(line for line in printed.splitlines() if line.startswith("next: "))
    words = shlex.split(hint.removeprefix("next: "))
    assert words[:3] == ["HF_HUB_OFFLINE=1", "python", "cross_eval.py"], "offline, it says so"
    assert words[words.index("--datasets") + 1:words.index("--datasets") + 3] == \
        [f"squad_v2={SAMPLE / 'dev.json'}", f"newsqa={NEWS / 'dev.jsonl'}"]
    assert " ".join(SMALL_WINDOWS) in " ".join(words) and "--learning_rate" not in words
    out = tmp_path / "from_hint"
    assert run_script_main(cross_eval, [*words[3:], "--output_dir", out]) == 1  # 1: the folder without a QA head
    result = json.loads((out / "matrix.json").read_text())
    assert all("metrics" in cell for row in result["cells"].values() for cell in row.values())


@pytest.mark.slow
def test_a_run_that_computes_nothing_leaves_the_reports_alone(matrix, models_dir, tmp_path, caplog):
    out = tmp_path / "nothing"
    shutil.copytree(matrix[0], out)
    before = {name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) for name in REPORTS}
    argv = ["--models", models_dir, "--output_dir", out, *SMALL_WINDOWS,
            "--datasets", f"squad_v2={tmp_path / 'gone.json'}", "no_such_set"]
    with caplog.at_level("INFO", logger="qa_transfer.cross_eval"):
        assert run_script_main(cross_eval, argv) == 1
    assert {name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) for name in REPORTS} == before
    assert "0 cell(s) computed, 0 reused" in caplog.text and "2 dataset(s) not loaded" in caplog.text
    assert "Nothing was computed, so the reports in" in caplog.text
    assert "datasets: none could be loaded" in caplog.text


@pytest.mark.slow
def test_a_failed_column_keeps_its_earlier_cells_marked(matrix, models_dir, tmp_path):
    out = tmp_path / "partial"
    shutil.copytree(matrix[0], out)
    earlier = json.loads((out / "matrix.json").read_text())
    argv = ["--models", models_dir, "--output_dir", out, "--per_device_eval_batch_size", "4", *SMALL_WINDOWS,
            "--datasets", f"squad_v2={SAMPLE / 'dev.json'}", f"newsqa={tmp_path / 'gone.jsonl'}"]
    assert run_script_main(cross_eval, argv) == 1
    result = json.loads((out / "matrix.json").read_text())
    assert result["rows"] == ["squad_v2", "newsqa"] and result["columns"] == ["squad_v2", "newsqa"]
    for row in result["rows"]:
        kept = result["cells"][row]["newsqa"]
        assert kept["from_earlier_run"] is True and "gone.jsonl: no such file" in kept["error_in_latest_run"]
        assert kept["metrics"] == earlier["cells"][row]["newsqa"]["metrics"]
        assert "from_earlier_run" not in result["cells"][row]["squad_v2"]
    assert len(result["failures"]) == 2  # the folder without a QA head, and the missing file
    markdown = (out / "matrix.md").read_text()
    f1 = earlier["cells"]["squad_v2"]["newsqa"]["metrics"]["f1"]
    assert "| squad_v2 | **" in markdown and f"{f1:.1f}*" in markdown
    assert "squad_v2 -> newsqa: kept from an earlier run; this run: " in markdown
    assert (out / "matrix.csv").read_text().splitlines()[1].split(",")[2] == f"{f1:.2f}"


def test_cells_are_marked_computed_earlier_failed_or_missing():
    matrix = {"rows": ["a"], "columns": ["x", "y", "z", "w"], "models": {"a": {"fine_tuned_on": "x"}}, "cells": {"a": {
        "x": {"metrics": {"f1": 50.0}}, "y": {"metrics": {"f1": 40.0}, "from_earlier_run": True},
        "z": {"error": "FileNotFoundError: gone"}}}}
    values = report.matrix_values(matrix, "f1")
    assert report.cell_marks(matrix, values) == [["50.0", "40.0*", "failed", "–"]]
    assert report.in_domain_cells(matrix) == [(0, 0)]


def test_help_lists_what_matters_for_evaluation(capsys):
    with pytest.raises(SystemExit):
        run_script_main(cross_eval, ["--help"], tiny=False)
    printed = capsys.readouterr().out
    assert printed.splitlines()[2].startswith("Evaluate every fine-tuned QA model on every dataset")
    for flag in ("--models", "--datasets", "--doc_stride", "--per_device_eval_batch_size", "--bf16"):
        assert f"  {flag} " in printed, flag
    for flag in ("--learning_rate", "--num_train_epochs", "--save_strategy", "--do_train"):
        assert f"  {flag} " not in printed, flag
    assert printed.index("--output_dir") < printed.index("Trainer options")
    assert "(default: MODELS/cross_eval" in " ".join(printed.split())


@pytest.mark.slow
def test_every_cell_has_bootstrap_intervals_from_its_questions(matrix):
    out, _ = matrix
    result = json.loads((out / "matrix.json").read_text())
    for row in result["rows"]:
        for column in result["columns"]:
            cell = result["cells"][row][column]
            metrics = cell["metrics"]
            assert cell["bootstrap"] == {"resamples": 1000, "confidence": 0.95, "seed": 42}
            for name in ("exact", "f1") + (("HasAns_f1", "NoAns_f1") if "NoAns_total" in metrics else ()):
                low, high = metrics[f"{name}_ci"]
                assert low <= metrics[name] <= high, (row, column, name)
            scores = json.loads((out / "cells" / row / column / SCORES_FILE).read_text())
            assert len(scores) == metrics["total"]
            assert 100 * sum(s["f1"] for s in scores.values()) / len(scores) == pytest.approx(metrics["f1"])
    markdown = (out / "matrix.md").read_text()
    f1, (low, high) = (result["cells"]["squad_v2"]["newsqa"]["metrics"][k] for k in ("f1", "f1_ci"))
    assert f"{f1:.1f} [{low:.1f}, {high:.1f}]" in markdown
    assert "## HasAns_f1" in markdown and "95 % bootstrap confidence interval" in markdown
    assert (out / "heatmap_HasAns_f1.png").is_file()
    # Only the marks that appear are explained: this matrix has no cell from an earlier run.
    assert "earlier run" not in markdown.split("## Change")[0]


@pytest.mark.slow
def test_answer_always_scores_equal_run_qa_without_negatives_even_where_the_model_abstains_everywhere(
        models_dir, tmp_path):
    """A threshold no null score can pass makes the squad_v2 row abstain on every question of the all-answerable
    set: under the SQuAD 2.0 rules it scores 0, answer-always still scores its best spans, exactly as run_qa.py
    --do_eval --version_2_with_negative false scores them."""
    out = tmp_path / "abstain"
    argv = ["--models", models_dir / "squad_v2", "--output_dir", out, "--per_device_eval_batch_size", "4",
            *SMALL_WINDOWS, "--datasets", f"newsqa={NEWS / 'dev.jsonl'}", "--version_2_with_negative", "true",
            "--null_score_diff_threshold=-1e9"]
    assert run_script_main(cross_eval, argv) == 0
    cell = json.loads((out / "cells" / "squad_v2" / "newsqa" / "metrics.json").read_text())["metrics"]
    assert cell["answered"] == 0 and cell["f1"] == 0 and cell["HasAns_f1"] == 0
    always = json.loads((out / "cells" / "squad_v2" / "newsqa" / "eval_answer_always_predictions.json").read_text())
    assert all(always.values()) and len(always) == cell["total"]

    eval_out = tmp_path / "run_qa_eval"
    run_script_main(run_qa, ["--model_name_or_path", models_dir / "squad_v2", "--validation_file", NEWS / "dev.jsonl",
                             "--do_eval", "--version_2_with_negative", "false", "--output_dir", eval_out,
                             "--per_device_eval_batch_size", "4", *SMALL_WINDOWS])
    reference = json.loads((eval_out / "eval_results.json").read_text())
    assert reference["eval_f1"] > 0
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "total"):
        assert cell[f"answer_always_{key}"] == reference[f"eval_{key}"], key
    assert always == json.loads((eval_out / "eval_predictions.json").read_text())
    low, high = cell["answer_always_HasAns_f1_ci"]
    assert low <= cell["answer_always_HasAns_f1"] <= high
    markdown = (out / "matrix.md").read_text()
    assert "## answer_always_HasAns_f1: HasAns F1, answer-always (each question's best non-empty span)" in markdown
    assert "# Cross-dataset f1: F1, SQuAD 2.0 rules (no answer where the null score wins)" in markdown
    assert (out / "heatmap_answer_always_HasAns_f1.png").is_file()
    assert run_script_main(cross_eval, [*argv, "--metric", "answer_always_f1"]) == 0  # reused: no model run
    assert (out / "matrix.csv").read_text().splitlines()[1] == f"squad_v2,{cell['answer_always_f1']:.2f}"


@pytest.mark.slow
def test_a_stored_cell_gets_intervals_for_new_bootstrap_settings_without_a_model_run(
        matrix, models_dir, tmp_path, monkeypatch):
    out, _ = matrix
    copy = tmp_path / "matrix"
    shutil.copytree(out, copy)
    cell_file = copy / "cells" / "squad_v2" / "squad_v2" / "metrics.json"
    cell = json.loads(cell_file.read_text())
    computed = dict(cell["metrics"])
    for key in [key for key in cell["metrics"] if key.endswith("_ci") or key.startswith("answer_always_")]:
        del cell["metrics"][key]
    del cell["bootstrap"], cell["metrics"]["answered"]  # as an older release stored it
    cell_file.write_text(json.dumps(cell))

    def no_model(*args, **kwargs):
        raise AssertionError("a stored cell must not run the model again")

    monkeypatch.setattr(cross_eval.CellEvaluator, "evaluate", no_model)
    run_cross_eval(monkeypatch, models_dir, copy, "--bootstrap_resamples", "200")
    for row in ("squad_v2", "newsqa"):
        for column in ("squad_v2", "newsqa"):
            stored = json.loads((copy / "cells" / row / column / "metrics.json").read_text())
            assert stored["bootstrap"]["resamples"] == 200 and "f1_ci" in stored["metrics"]
            assert "answer_always_HasAns_f1_ci" in stored["metrics"]
    restored = json.loads(cell_file.read_text())["metrics"]
    assert {key: restored[key] for key in computed if key.startswith("answer_always_") and "_ci" not in key} == \
        {key: computed[key] for key in computed if key.startswith("answer_always_") and "_ci" not in key}
