"""bench/bench_example.py: the pre-cut data (the first questions in file order, the same in both layouts), the
commands of both scripts, and the table and ratios read from all_results.json files. No model is run."""

import gzip
import json
import sys
from pathlib import Path

import bench_example
import pytest
from shared import read_jsonl

SQUAD = {
    "version": "v2.0",
    "data": [
        {"title": "First", "paragraphs": [
            {"context": "Alpha beta gamma.", "qas": [
                {"id": "q1", "question": "Which letter?", "is_impossible": False,
                 "answers": [{"text": "beta", "answer_start": 6}, {"text": "beta gamma", "answer_start": 6}]},
                {"id": "q2", "question": "Which number?", "is_impossible": True, "answers": [],
                 "plausible_answers": [{"text": "gamma", "answer_start": 11}]},
            ]},
            {"context": "Delta epsilon.", "qas": [
                {"id": "q3", "question": "Which one?", "answers": [{"text": "Delta", "answer_start": 0}]},
            ]},
        ]},
        {"title": "Second", "paragraphs": [
            {"context": "Zeta eta theta.", "qas": [
                {"id": "q4", "question": "What comes last?", "is_impossible": False,
                 "answers": [{"text": "theta", "answer_start": 9}]},
                {"id": "q5", "question": "Another?", "is_impossible": False,
                 "answers": [{"text": "eta", "answer_start": 5}]},
            ]},
        ]},
    ],
}


@pytest.fixture
def squad_file(tmp_path: Path) -> str:
    path = tmp_path / "squad.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(SQUAD, handle)
    return str(path)


def test_the_first_questions_in_file_order_across_paragraphs_and_articles(squad_file):
    records = bench_example.first_questions(squad_file, 4)
    assert [record["id"] for record in records] == ["q1", "q2", "q3", "q4"]
    assert [record["title"] for record in records] == ["First", "First", "First", "Second"]
    assert records[0] == {"id": "q1", "title": "First", "context": "Alpha beta gamma.", "question": "Which letter?",
                          "answers": {"text": ["beta", "beta gamma"], "answer_start": [6, 6]}}
    assert records[2]["context"] == "Delta epsilon."
    assert len(bench_example.first_questions(squad_file, 50)) == 5  # a file with fewer: all of them


def test_an_unanswerable_question_gets_empty_lists_not_its_plausible_answers(squad_file):
    unanswerable = bench_example.first_questions(squad_file, 2)[1]
    assert unanswerable["answers"] == {"text": [], "answer_start": []}


def test_both_layouts_hold_the_same_questions_in_the_same_order(squad_file, tmp_path):
    data = bench_example.prepare_data(str(tmp_path / "out"), 3, 2, train_source=squad_file, eval_source=squad_file)
    for split, count in (("train", 3), ("validation", 2)):
        flat = read_jsonl(data[split]["jsonl"])
        with open(data[split]["json"], encoding="utf-8") as handle:
            nested = json.load(handle)
        assert list(nested) == ["data"] and nested["data"] == flat  # the example reads field="data"
        assert [record["id"] for record in flat] == ["q1", "q2", "q3"][:count]
        assert data[split]["questions"] == count and data[split]["unanswerable"] == 1
    assert data["train"]["jsonl"].endswith("data/train.jsonl")
    assert data["validation"]["json"].endswith("data/validation.json")


DATA = {"train": {"jsonl": "/d/train.jsonl", "json": "/d/train.json"},
        "validation": {"jsonl": "/d/validation.jsonl", "json": "/d/validation.json"}}


def commands(precision: str) -> tuple[list[str], list[str]]:
    ours = bench_example.ours_command("/model", precision, DATA, "/out/ours")
    example = bench_example.example_command("/out/run_example.py", "/ex", "/metric", "/model", precision, DATA,
                                            "/out/example")
    return ours, example


def flag_value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_scripts_get_the_same_shared_flags(precision):
    ours, example = commands(precision)
    shared = bench_example.shared_flags("/model", precision)
    assert ours[1] == bench_example.OURS and ours[2:2 + len(shared)] == shared
    assert example[1:4] == ["/out/run_example.py", "/ex", "/metric"] and example[4:4 + len(shared)] == shared
    for flag, value in (("--max_seq_length", "256"), ("--doc_stride", "64"), ("--per_device_train_batch_size", "16"),
                        ("--per_device_eval_batch_size", "32"), ("--learning_rate", "5e-5"),
                        ("--num_train_epochs", "1"), ("--seed", "42"), ("--save_strategy", "no"),
                        ("--report_to", "none"), ("--model_name_or_path", "/model")):
        assert flag_value(ours, flag) == flag_value(example, flag) == value
    assert "--do_train" in shared and "--do_eval" in shared
    assert not any(flag.startswith("--max_") and flag.endswith("_samples") for flag in ours + example)


def test_each_script_reads_its_own_layout_of_the_data_and_writes_its_own_folder():
    ours, example = commands("fp32")
    assert (flag_value(ours, "--train_file"), flag_value(ours, "--validation_file")) == (
        "/d/train.jsonl", "/d/validation.jsonl")
    assert (flag_value(example, "--train_file"), flag_value(example, "--validation_file")) == (
        "/d/train.json", "/d/validation.json")
    assert flag_value(ours, "--output_dir") == "/out/ours" and flag_value(example, "--output_dir") == "/out/example"


def test_bf16_adds_bf16_on_the_cpu_to_both_and_fp32_adds_nothing():
    for command in commands("bf16"):
        assert "--bf16" in command and "--use_cpu" in command
    for command in commands("fp32"):
        assert "--bf16" not in command and "--use_cpu" not in command


def test_version_2_with_negative_only_for_the_example_and_overwrite_only_for_ours():
    ours, example = commands("fp32")
    assert "--version_2_with_negative" in example and "--version_2_with_negative" not in ours
    # transformers 5's TrainingArguments has no --overwrite_output_dir: the example's parser would refuse it
    assert "--overwrite_output_dir" in ours and "--overwrite_output_dir" not in example


def test_the_launcher_points_evaluate_load_at_the_local_metric(tmp_path):
    path = bench_example.write_launcher(str(tmp_path))
    source = Path(path).read_text(encoding="utf-8")
    compile(source, path, "exec")
    assert 'run_name="__main__"' in source and '("squad", "squad_v2")' in source


def write_results(run_dir: Path, results: dict) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "all_results.json").write_text(json.dumps(results), encoding="utf-8")


OURS_RESULTS = {"train_runtime": 100.0, "train_samples": 40, "train_windows": 120, "eval_runtime": 10.0,
                "eval_exact": 50.0, "eval_f1": 55.0, "eval_HasAns_f1": 60.0, "eval_NoAns_f1": 45.0, "eval_loss": 2.0}
EXAMPLE_RESULTS = {"train_runtime": 200.0, "train_samples": 121, "eval_runtime": 20.0, "eval_exact": 40.0,
                   "eval_f1": 44.0, "eval_HasAns_f1": 48.0, "eval_NoAns_f1": 40.0}


def test_results_are_read_whichever_key_names_each_script_wrote(tmp_path):
    write_results(tmp_path / "ours", OURS_RESULTS)
    write_results(tmp_path / "example", EXAMPLE_RESULTS)
    write_results(tmp_path / "squad11", {"train_runtime": 1.0, "eval_exact_match": 30.0, "eval_f1": 35.0})
    ours = bench_example.read_results(str(tmp_path / "ours"))
    assert ours["train_windows"] == 120  # ours' train_samples counts questions
    assert ours["exact"] == 50.0 and ours["NoAns_f1"] == 45.0
    assert bench_example.read_results(str(tmp_path / "example"))["train_windows"] == 121
    squad11 = bench_example.read_results(str(tmp_path / "squad11"))
    assert squad11["exact"] == 30.0 and squad11["NoAns_f1"] is None and squad11["eval_runtime"] is None


def fake_runs(tmp_path: Path) -> list[dict]:
    runs = []
    walls = {("ours", "fp32", 1): 150.0, ("example", "fp32", 1): 300.0, ("ours", "bf16", 1): 100.0,
             ("example", "bf16", 1): 240.0, ("ours", "fp32", 2): 120.0, ("example", "fp32", 2): 330.0,
             ("ours", "bf16", 2): 110.0, ("example", "bf16", 2): 220.0}
    for (script, precision, round_index), wall in walls.items():
        name = bench_example.run_name(script, precision, round_index, 2)
        results = dict(OURS_RESULTS if script == "ours" else EXAMPLE_RESULTS)
        results["train_runtime"] = wall - 20
        write_results(tmp_path / name, results)
        runs.append({"run": name, "script": script, "precision": precision, "round": round_index, "wall_s": wall,
                     **bench_example.read_results(str(tmp_path / name))})
    return runs


def test_ratios_take_the_best_round_of_each_script_and_precision(tmp_path):
    ratios = bench_example.ratios(fake_runs(tmp_path))
    assert ratios["ours/example wall_s"] == {"fp32": pytest.approx(120 / 300), "bf16": pytest.approx(100 / 220)}
    assert ratios["bf16 speed-up wall_s"] == {"ours": pytest.approx(120 / 100), "example": pytest.approx(300 / 220)}
    assert ratios["ours/example train_runtime"]["fp32"] == pytest.approx(100 / 280)
    assert ratios["bf16 speed-up train_runtime"]["example"] == pytest.approx(280 / 200)


def test_one_precision_gives_no_speed_up_and_a_missing_time_is_skipped():
    runs = [{"run": "ours_fp32", "script": "ours", "precision": "fp32", "wall_s": 10.0, "train_runtime": None},
            {"run": "example_fp32", "script": "example", "precision": "fp32", "wall_s": 20.0, "train_runtime": 5.0}]
    assert bench_example.ratios(runs) == {"ours/example wall_s": {"fp32": 0.5}}


def test_the_markdown_table_has_one_row_per_run(tmp_path):
    runs = fake_runs(tmp_path)
    runs[1]["NoAns_f1"] = None
    lines = bench_example.markdown_table(runs).splitlines()
    assert lines[0] == "| run | wall | train_runtime | eval_runtime | EM / F1 / HasAns_f1 / NoAns_f1 |"
    assert len(lines) == 2 + len(runs)
    assert lines[2] == "| ours_fp32_r1 | 150.0 s | 130.0 s | 10.0 s | 50.00 / 55.00 / 60.00 / 45.00 |"
    assert lines[3].endswith("| 40.00 / 44.00 / 48.00 / n/a |")
    assert any(line[2:] == "ours/example, wall, fp32: 0.40x" for line in
               bench_example.ratio_lines(bench_example.ratios(runs)))


def test_run_names_carry_the_round_only_with_several_rounds():
    assert bench_example.run_name("ours", "bf16", 1, 1) == "ours_bf16"
    assert bench_example.run_name("example", "fp32", 3, 3) == "example_fp32_r3"


def test_a_failing_run_prints_its_log_tail_and_exits_non_zero(tmp_path, capsys):
    command = [sys.executable, "-c", "import sys; print('\\n'.join(f'line {i}' for i in range(100))); sys.exit(3)"]
    with pytest.raises(SystemExit) as raised:
        bench_example.run_one("broken", command, str(tmp_path))
    assert raised.value.code == 1
    err = capsys.readouterr().err
    assert "exit status 3" in err and "line 99" in err and "line 10\n" not in err
    assert (tmp_path / "broken.log").exists()
