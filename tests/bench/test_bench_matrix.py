"""bench/bench_matrix.py: the commands it runs, the comparison with the published replications (orders, diagonal,
Spearman, disagreements against our intervals) and results published without absolute paths."""

import json
import os

import bench_matrix
import pytest


def cell(f1: float, low: float, high: float) -> dict:
    """An all-answerable cell with the same F1 under both protocols."""
    return {"metrics": {"f1": f1, "exact": f1 - 5, "total": 10, "f1_ci": [low, high],
                        "answer_always_f1": f1, "answer_always_HasAns_f1": f1,
                        "answer_always_HasAns_f1_ci": [low, high]}}


def matrix_of(scores: dict[str, list[float]], width: float = 2.0) -> dict:
    """A matrix.json of all-answerable columns (HasAns F1 = F1) with intervals of +- `width`."""
    return {"rows": list(scores), "columns": bench_matrix.COLUMNS,
            "cells": {row: {column: cell(value, value - width, value + width)
                            for column, value in zip(bench_matrix.COLUMNS, values)} for row, values in scores.items()}}


def test_a_matrix_ordered_like_a_replication_correlates_perfectly():
    published = bench_matrix.PUBLISHED["MediaBilly/BERT-Question-Answering"]["cells"]
    ours = {row: [value / 2 for value in values] for row, values in published.items()}  # half the level, same pattern
    comparison = bench_matrix.compare(matrix_of(ours))
    for metric in bench_matrix.PROTOCOL_METRICS:  # the same values under both protocols here
        protocol = comparison["protocols"][metric]
        media = protocol["replications"]["MediaBilly/BERT-Question-Answering"]
        assert media["cells_compared"] == 12 and media["spearman"] == pytest.approx(1.0)
        assert media["order_disagreements"] == [] and media["spearman_interval"] is None  # no stored questions
        assert protocol["ours"]["squad_v2"] == {"order": ["squad_v2", "natural_questions", "newsqa", "trivia_qa"],
                                                "diagonal_is_best": True, "squad_v2_rank": 1}
        assert protocol["ours"]["newsqa"]["diagonal_is_best"] is False  # as in that replication: SQuAD is best there
        nikos = protocol["replications"]["nikossrp/Question-Answering-Bert"]
        assert nikos["cells_compared"] == 11  # its NQ -> NewsQA cell is missing
        course = protocol["replications"][next(name for name in bench_matrix.PUBLISHED if name.startswith("course"))]
        assert course["cells_compared"] == 8 and "natural_questions" not in course["rows"]
    assert "answer-always" in comparison["protocols"]["answer_always_HasAns_f1"]["description"]
    assert "SQuAD 2.0 rules" in comparison["protocols"]["HasAns_f1"]["description"]


def test_the_replications_agree_with_each_other_as_published():
    [media_nikos] = [entry for entry in bench_matrix.replications_agreement()
                     if entry["replications"] == list(bench_matrix.COMPLETE)]
    assert media_nikos["cells_compared"] == 11 and round(media_nikos["spearman"], 2) == 0.94


def test_the_spearman_interval_resamples_every_cells_questions(tmp_path):
    """Cells with the replication's pattern: tight questions give a tight interval near +1, a handful of noisy
    questions per cell a wide one; both come from the stored per-question scores of each cell."""
    import numpy as np

    from qa_transfer.qa.scores import SCORES_FILE

    published = bench_matrix.PUBLISHED["MediaBilly/BERT-Question-Answering"]["cells"]
    rng = np.random.default_rng(0)
    intervals = {}
    for questions in (2000, 4):
        matrix_dir = tmp_path / str(questions)
        matrix = matrix_of({row: list(values) for row, values in published.items()})
        for row, values in published.items():
            for column, value in zip(bench_matrix.COLUMNS, values):
                f1 = (rng.random(questions) < value / 100).astype(float)  # each question right with p = value
                metrics = matrix["cells"][row][column]["metrics"]
                metrics["answer_always_f1"] = metrics["answer_always_HasAns_f1"] = 100 * f1.mean()
                (matrix_dir / "cells" / row / column).mkdir(parents=True)
                (matrix_dir / "cells" / row / column / SCORES_FILE).write_text(json.dumps(
                    {f"q{i}": {"exact": v, "f1": v, "has_answer": True, "answer_always_exact": v,
                               "answer_always_f1": v} for i, v in enumerate(f1)}))
        comparison = bench_matrix.compare(matrix, str(matrix_dir), resamples=300, seed=1)
        media = comparison["protocols"]["answer_always_HasAns_f1"]["replications"][bench_matrix.COMPLETE[0]]
        low, high = media["spearman_interval"]
        assert low <= media["spearman"] <= high
        intervals[questions] = (low, high)
        assert bench_matrix.compare(matrix, str(matrix_dir), resamples=300, seed=1) == comparison  # seeded
    assert intervals[2000][0] > 0.8 and intervals[2000][1] - intervals[2000][0] < 0.3
    assert intervals[4][1] - intervals[4][0] > 2 * (intervals[2000][1] - intervals[2000][0])


def test_each_disagreement_in_order_says_whether_our_intervals_overlap():
    published = bench_matrix.PUBLISHED["MediaBilly/BERT-Question-Answering"]["cells"]
    ours = {row: list(values) for row, values in published.items()}
    ours["squad_v2"][1], ours["squad_v2"][3] = 45.0, 44.0  # trivia_qa now above newsqa (theirs: 34.67 < 44.28)
    ours["newsqa"][0], ours["newsqa"][3] = 50.0, 60.0  # newsqa above squad_v2 by more than the intervals
    disagreements = bench_matrix.compare(matrix_of(ours))["protocols"]["answer_always_HasAns_f1"]["replications"][
        "MediaBilly/BERT-Question-Answering"]["order_disagreements"]
    found = {(d["row"], tuple(d["columns"])): d["within_our_intervals"] for d in disagreements}
    assert found == {("squad_v2", ("trivia_qa", "newsqa")): True, ("newsqa", ("squad_v2", "newsqa")): False}
    markdown = bench_matrix.comparison_markdown(bench_matrix.compare(matrix_of(ours)), matrix_of(ours))
    assert "squad_v2: trivia_qa vs newsqa (yes)" in markdown and "| ours | squad_v2 | 77.7 [75.7, 79.7] |" in markdown


def test_agreement_within_rows_and_per_row_sets_each_rows_level_aside():
    """Every row with the replication's order but its own level, far apart: within rows and per row they agree
    perfectly, over the whole matrix less; one row reversed is -1 in its own row and pulls the within-rows figure
    down, the other rows keep +1."""
    published = bench_matrix.PUBLISHED["MediaBilly/BERT-Question-Answering"]["cells"]
    ours = {row: [value / 10 + 30 * level for value in values]
            for level, (row, values) in zip((0, 2, 1), published.items())}
    media = bench_matrix.compare(matrix_of(ours))["protocols"]["answer_always_HasAns_f1"]["replications"][
        bench_matrix.COMPLETE[0]]
    assert media["within_rows_spearman"] == pytest.approx(1.0) and media["spearman"] < 0.8
    assert {row: entry["spearman"] for row, entry in media["per_row"].items()} == pytest.approx(
        dict.fromkeys(bench_matrix.ROWS, 1.0))
    assert media["within_rows_interval"] is None and media["per_row"]["newsqa"]["cells_compared"] == 4
    ours["newsqa"] = [100 - value for value in ours["newsqa"]]
    comparison = bench_matrix.compare(matrix_of(ours))
    media = comparison["protocols"]["answer_always_HasAns_f1"]["replications"][bench_matrix.COMPLETE[0]]
    assert media["per_row"]["newsqa"]["spearman"] == pytest.approx(-1.0)
    assert media["per_row"]["squad_v2"]["spearman"] == pytest.approx(1.0)
    assert -1 < media["within_rows_spearman"] < 0.5
    markdown = bench_matrix.comparison_markdown(comparison, matrix_of(ours))
    assert "| within rows | per row |" in markdown and "newsqa -1.00;" not in markdown and "newsqa -1.00 |" in markdown
    [complete] = [entry for entry in comparison["replications_agreement"]
                  if entry["replications"] == list(bench_matrix.COMPLETE)]
    assert round(complete["within_rows_spearman"], 2) == 0.85  # the replications with each other, within rows


def test_centring_by_group_leaves_only_the_order_within_each_group():
    import numpy as np

    from qa_transfer.qa.scores import centred_by_group, rank_correlation_interval

    values = np.array([[1.0, 3.0, 10.0, 14.0], [2.0, 2.0, 0.0, 4.0]])
    assert centred_by_group(values, ["a", "a", "b", "b"]).tolist() == [[-1, 1, -2, 2], [0, 0, -2, 2]]
    # Two groups whose levels are reversed against the reference, each ordered like it: +1 within groups only.
    rng = np.random.default_rng(0)
    ours_means = {"low": [0.20, 0.21, 0.25], "high": [0.80, 0.84, 0.85]}  # centred: -.027 -.017 .043 / -.03 .01 .02
    theirs = {"low": [70.0, 71.0, 75.0], "high": [10.0, 14.0, 15.0]}  # centred: -2 -1 3 / -3 1 2: the same order
    cells = {(group, c): rng.normal(mean, 0.001, 500) for group, means in ours_means.items()
             for c, mean in enumerate(means)}
    reference = {(group, c): value for group, values in theirs.items() for c, value in enumerate(values)}
    plain = rank_correlation_interval(cells, reference, resamples=200, seed=3)
    within = rank_correlation_interval(cells, reference, resamples=200, seed=3, group_of=lambda key: key[0])
    assert plain["spearman"] < 0 and within["spearman"] == pytest.approx(1.0)
    assert within["interval"] == pytest.approx([1.0, 1.0]) and plain["interval"][1] < 0


def test_published_results_name_no_absolute_path(tmp_path):
    out = tmp_path / "run"
    (out / "matrix").mkdir(parents=True)
    matrix = matrix_of({"squad_v2": [1, 2, 3, 4]})
    matrix["models"] = {"squad_v2": {"dir": str(bench_matrix.REPO) + "/../runs/models/squad_v2"}}
    matrix["cells"]["squad_v2"]["squad_v2"]["settings"] = {"model_dir": str(tmp_path / "models" / "squad_v2")}
    (out / "matrix" / "matrix.json").write_text(json.dumps(matrix))
    (out / "matrix" / "matrix.md").write_text("# m\n")
    (out / "matrix" / "heatmap.png").write_bytes(b"\x89PNG")
    (out / "comparison.json").write_text(json.dumps({"x": str(tmp_path)}))
    (out / "comparison.md").write_text("# c\n")
    (out / "matrix" / "analysis.json").write_text(json.dumps({"models": {"squad_v2": {"dir": str(tmp_path)}}}))
    (out / "matrix" / "analysis.md").write_text("# a\n")
    (out / "matrix" / "overlap.png").write_bytes(b"\x89PNG")
    destination = tmp_path / "published"
    bench_matrix.publish(str(out), str(destination))
    assert sorted(p.name for p in destination.iterdir()) == [
        "analysis", "comparison.json", "comparison.md", "heatmap.png", "matrix.json", "matrix.md"]
    assert sorted(p.name for p in (destination / "analysis").iterdir()) == [
        "analysis.json", "analysis.md", "overlap.png"]

    def strings(value):
        if isinstance(value, dict):
            return [s for item in value.values() for s in strings(item)]
        if isinstance(value, list):
            return [s for item in value for s in strings(item)]
        return [value] if isinstance(value, str) else []

    for name in ("matrix.json", "comparison.json", "analysis/analysis.json"):
        found = strings(json.loads((destination / name).read_text()))
        assert found and not [s for s in found if s.startswith("/")], name
    published = json.loads((destination / "matrix.json").read_text())
    assert published["models"]["squad_v2"]["dir"] == "../runs/models/squad_v2"


def test_an_earlier_folder_inside_the_repository_is_recorded_relative_to_it(tmp_path, monkeypatch):
    published = os.path.join(bench_matrix.REPO, "docs", "results", "transfer_matrix", "budget_curve", "1500")
    assert bench_matrix.repository_path(published) == os.path.join(
        "docs", "results", "transfer_matrix", "budget_curve", "1500")
    monkeypatch.chdir(bench_matrix.REPO)  # as the documented commands give it
    assert bench_matrix.repository_path("docs/results/transfer_matrix") == os.path.join(
        "docs", "results", "transfer_matrix")
    assert bench_matrix.repository_path(str(tmp_path / "parts")) == str(tmp_path / "parts")  # publish() relativises


def test_the_commands_share_the_recipe_and_the_windows(tmp_path):
    args = type("Args", (), {"output_dir": str(tmp_path), "questions": bench_matrix.parse_questions(["120"]),
                             "rows": bench_matrix.ROWS, "max_eval_samples": 40, "seed": 42,
                             "bootstrap_resamples": 1000})()
    extra = ["--max_seq_length", "192", "--num_train_epochs", "1"]
    [train] = bench_matrix.fine_tune_commands(args, str(tmp_path / "squad.jsonl"), extra)
    assert train[train.index("--datasets") + 1:train.index("--datasets") + 4] == bench_matrix.ROWS
    assert train[-len(extra):] == extra and train[train.index("--max_train_samples") + 1] == "120"
    evaluate = bench_matrix.cross_eval_command(args, extra, bf16=True)
    assert evaluate[evaluate.index("--max_eval_samples") + 1] == "40" and "--bf16" in evaluate
    # the last --max_seq_length wins: the one after `--`, as in training
    assert evaluate[len(evaluate) - 1 - evaluate[::-1].index("--max_seq_length") + 1] == "192"
    assert "--num_train_epochs" not in evaluate
    assert evaluate[evaluate.index("--analysis") + 1] == "overlap"
    # an fp32 matrix: `--bf16 false` after `--` reaches the evaluation too, after the default --bf16
    fp32 = bench_matrix.cross_eval_command(args, [*extra, "--bf16", "false"], bf16=True)
    assert fp32[-2:] == ["--bf16", "false"]
    assert bench_matrix.precision_overrides(["--bf16=false", "--seed", "1", "--fp16"]) == ["--bf16=false", "--fp16"]


def test_questions_per_row_and_all(tmp_path):
    assert bench_matrix.parse_questions([]) == dict.fromkeys(bench_matrix.ROWS, bench_matrix.DEFAULT_QUESTIONS)
    sizes = bench_matrix.parse_questions(["1500", "newsqa=all"])
    assert sizes == {"squad_v2": 1500, "natural_questions": 1500, "newsqa": None}
    args = type("Args", (), {"output_dir": str(tmp_path), "questions": sizes, "rows": bench_matrix.ROWS})()
    first, second = bench_matrix.fine_tune_commands(args, str(tmp_path / "squad.jsonl"), [])
    assert first[first.index("--datasets") + 1:first.index("--datasets") + 3] == ["squad_v2", "natural_questions"]
    assert first[first.index("--max_train_samples") + 1] == "1500"
    assert second[second.index("--datasets") + 1] == "newsqa" and "--max_train_samples" not in second
    assert "--train_file" in second and second[second.index("--train_file") + 1].startswith("newsqa=")
    args.rows = ["newsqa"]  # --rows: only the rows named train, SQuAD 2.0's file is not even prepared
    [only] = bench_matrix.fine_tune_commands(args, None, [])
    assert only[only.index("--datasets") + 1:only.index("--model_name_or_path")] == ["newsqa"]
    assert not [token for token in only if token.startswith("squad_v2=")]
    with pytest.raises(SystemExit, match="positive number or 'all'"):
        bench_matrix.parse_questions(["many"])
    with pytest.raises(SystemExit, match="the rows are"):
        bench_matrix.parse_questions(["quac=all"])


def test_the_budget_curve_sets_each_runs_agreement_against_its_training_questions(tmp_path):
    published = bench_matrix.PUBLISHED["MediaBilly/BERT-Question-Answering"]["cells"]
    runs = []
    for questions, sign in ((500, -1), (1500, 1)):  # the small run's pattern reversed, the larger one's theirs
        scores = {row: [50 + sign * (value - 50) for value in values] for row, values in published.items()}
        matrix = matrix_of(scores)
        matrix["models"] = {row: {"train_samples": questions} for row in scores}
        run = tmp_path / f"run_{questions}"
        (run / "matrix").mkdir(parents=True)
        (run / "matrix" / "matrix.json").write_text(json.dumps(matrix))
        (run / "comparison.json").write_text(json.dumps(bench_matrix.compare(matrix)))
        runs.append(str(run))
    curve = bench_matrix.write_curve(runs[::-1], str(tmp_path / "curve"))
    assert [point["mean_train_questions"] for point in curve["points"]] == [500, 1500]
    key = f"answer_always_HasAns_f1 / {bench_matrix.COMPLETE[0]}"
    assert curve["points"][1]["agreement"][key]["spearman"] == pytest.approx(1.0)
    assert curve["points"][0]["agreement"][key]["spearman"] == pytest.approx(-1.0)
    assert len(curve["points"][0]["agreement"]) == 4  # two protocols x two complete replications
    assert round(curve["replications_with_each_other"], 2) == 0.94
    assert (tmp_path / "curve" / "curve.png").stat().st_size > 0
    markdown = (tmp_path / "curve" / "curve.md").read_text()
    assert "| 1,500 / 1,500 / 1,500 | answer-always (each question's best non-empty span) |" in markdown
    # A published comparison file is a point too: its run record gives the training questions.
    published_file = tmp_path / "comparison_500.json"
    record = json.loads((tmp_path / "run_500" / "comparison.json").read_text())
    record["runs"] = {"rows": {row: {"train_samples": 500} for row in published}}
    published_file.write_text(json.dumps(record))
    again = bench_matrix.write_curve([str(published_file), runs[1]], str(tmp_path / "curve_again"))
    assert [point["agreement"] for point in again["points"]] == [point["agreement"] for point in curve["points"]]
    (tmp_path / "run_500" / "comparison.json").write_text(json.dumps({"replications": {}}))  # an older run's
    with pytest.raises(SystemExit, match="run bench_matrix.py again"):
        bench_matrix.write_curve(runs, str(tmp_path / "curve"))


def test_compare_runs_gives_the_paired_difference_and_its_interval(tmp_path):
    import compare_runs

    references = {f"q{i}": {"text": ["yes"], "answer_start": [0]} for i in range(40)}
    references.update({f"u{i}": {"text": [], "answer_start": []} for i in range(10)})
    runs = {}
    for name, right in (("a", 20), ("b", 30)):
        predictions = {f"q{i}": "yes" if i < right else "no" for i in range(40)} | {f"u{i}": "" for i in range(10)}
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "eval_predictions.json").write_text(json.dumps(predictions))
    result = compare_runs.compare(str(runs["a"]), str(runs["b"]), references, resamples=500)
    row = result["HasAns exact"]
    assert (row["a"], row["b"], row["b_minus_a"], row["questions"]) == (50.0, 75.0, 25.0, 40)
    low, high = row["interval"]
    assert 0 < low < 25 < high <= 50  # b is right on a superset of a's questions: every resample favours b
    assert result["NoAns f1"]["b_minus_a"] == 0 and result["NoAns f1"]["interval"] == [0.0, 0.0]
    same = compare_runs.compare(str(runs["a"]), str(runs["a"]), references, resamples=100)
    assert all(row["interval"] == [0.0, 0.0] for row in same.values())


def run_of(tmp_path, name: str, scores: dict[str, list[float]], questions: int = 300) -> str:
    """A finished run's folder (matrix, per-question scores, overlap analysis, comparison with its run record) whose
    rows `scores` (row -> F1 per column) were trained on `questions` questions each; every question of a cell scores
    its cell's F1 (0-1), 50 questions a cell."""
    from qa_transfer.qa.scores import SCORES_FILE

    run = tmp_path / name
    matrix = matrix_of(scores)
    matrix["models"] = {row: {"fine_tuned_on": row, "train_samples": questions, "dir": str(run / "models" / row)}
                        for row in scores}
    for row, values in scores.items():
        for column, value in zip(bench_matrix.COLUMNS, values):
            (run / "matrix" / "cells" / row / column).mkdir(parents=True)
            (run / "matrix" / "cells" / row / column / SCORES_FILE).write_text(json.dumps(
                {f"q{i}": {"exact": value / 100, "f1": value / 100, "has_answer": True,
                           "answer_always_exact": value / 100, "answer_always_f1": value / 100} for i in range(50)}))
    (run / "matrix" / "matrix.json").write_text(json.dumps(matrix))
    (run / "matrix" / "matrix.md").write_text("# m\n")
    analysis = {"rows": list(scores), "columns": bench_matrix.COLUMNS,
                "models": {row: {"fine_tuned_on": row} for row in scores},
                "cells": {row: {column: {"metrics": {"questions": 50}} for column in bench_matrix.COLUMNS}
                          for row in scores}}
    (run / "matrix" / "analysis.json").write_text(json.dumps(analysis))
    (run / "matrix" / "analysis.md").write_text("# a\n")
    (run / "matrix" / "overlap.png").write_bytes(b"\x89PNG")
    args = bench_matrix_args(tmp_path, questions, list(scores))
    comparison = bench_matrix.compare(matrix, str(run / "matrix"), resamples=50)
    comparison["runs"] = {"rows": {row: {"train_samples": questions, "train_runtime": 60.0} for row in scores},
                          "this_invocation_seconds": {"total": 99.0}, "trained_rows": list(scores),
                          "arguments": bench_matrix.run_arguments(args, [])}
    (run / "comparison.json").write_text(json.dumps(comparison))
    (run / "comparison.md").write_text("# c\n")
    return str(run)


def bench_matrix_args(tmp_path, questions: int, rows: list[str], output_dir: str = "later"):
    import argparse

    return argparse.Namespace(output_dir=str(tmp_path / output_dir), rows=rows,
                              questions=bench_matrix.parse_questions([str(questions)]), unanswerable_share=1 / 3,
                              max_eval_samples=None, seed=42, bootstrap_resamples=1000)


def test_a_matrix_made_in_two_invocations_compares_like_one(tmp_path):
    """Two rows trained and published in one invocation, the middle one in a later one started from the published
    folder (--earlier): the later matrix holds all three rows in the diagonal's order, the earlier cells marked and
    their per-question scores back in place, so the comparison of the whole matrix has its intervals."""
    from qa_transfer.matrix.report import merge_with_earlier, read_earlier_report

    published_cells = bench_matrix.PUBLISHED["MediaBilly/BERT-Question-Answering"]["cells"]
    first = run_of(tmp_path, "first", {row: published_cells[row] for row in ("squad_v2", "newsqa")})
    bench_matrix.publish(first, str(tmp_path / "published"))
    stored = sorted(p.relative_to(tmp_path / "published").as_posix()
                    for p in (tmp_path / "published" / "cells").rglob("*.gz"))
    assert len(stored) == 8 and "cells/newsqa/trivia_qa/eval_scores.json.gz" in stored

    args = bench_matrix_args(tmp_path, 300, ["natural_questions"])
    record = bench_matrix.restore_earlier(str(tmp_path / "published"), args, [])
    assert list(record["rows"]) == ["squad_v2", "newsqa"] and record["trained_rows"] == list(record["rows"])
    matrix_dir = tmp_path / "later" / "matrix"
    restored = json.loads((matrix_dir / "matrix.json").read_text())
    assert restored["rows"] == ["squad_v2", "newsqa"]
    assert all(cell["from_earlier_run"] for cells in restored["cells"].values() for cell in cells.values())
    assert json.loads((matrix_dir / "analysis.json").read_text())["rows"] == ["squad_v2", "newsqa"]
    assert bench_matrix.restore_earlier(str(tmp_path / "published"), args, []) == record  # again: the same

    # What cross_eval.py then writes: this invocation's row merged with the restored ones, diagonal order kept.
    now = json.loads((tmp_path / "first" / "matrix" / "matrix.json").read_text())  # a row's cells, renamed
    row = "natural_questions"
    report = {**now, "rows": [row], "cells": {row: matrix_of({row: published_cells[row]})["cells"][row]},
              "models": {row: {"fine_tuned_on": row, "train_samples": 300}}, "datasets": {}}
    merged = merge_with_earlier(report, read_earlier_report(str(matrix_dir)))
    assert merged["rows"] == bench_matrix.ROWS  # squad_v2, natural_questions, newsqa: not the order of the runs
    for column, value in zip(bench_matrix.COLUMNS, published_cells[row]):
        from qa_transfer.qa.scores import SCORES_FILE

        (matrix_dir / "cells" / row / column).mkdir(parents=True)
        (matrix_dir / "cells" / row / column / SCORES_FILE).write_text(json.dumps(
            {f"q{i}": {"exact": 0.0, "f1": value / 100, "has_answer": True, "answer_always_exact": 0.0,
                       "answer_always_f1": value / 100} for i in range(50)}))
    comparison = bench_matrix.compare(merged, str(matrix_dir), resamples=50)
    media = comparison["protocols"]["answer_always_HasAns_f1"]["replications"][bench_matrix.COMPLETE[0]]
    assert media["cells_compared"] == 12 and media["spearman"] == pytest.approx(1.0)
    assert media["spearman_interval"] == pytest.approx([1.0, 1.0])  # every cell's questions restored


def test_a_published_comparison_is_written_again_from_its_stored_scores(tmp_path, capsys):
    """--compare: the comparison of a published folder (gzipped per-question scores) written anew with today's
    figures (within rows, per row, their intervals), its run record and bootstrap settings kept, no model run."""
    published_cells = bench_matrix.PUBLISHED["MediaBilly/BERT-Question-Answering"]["cells"]
    run = run_of(tmp_path, "first", {row: published_cells[row] for row in ("squad_v2", "newsqa")})
    destination = tmp_path / "published"
    bench_matrix.publish(run, str(destination))
    older = json.loads((destination / "comparison.json").read_text())
    for protocol in older["protocols"].values():  # as a comparison written before these figures existed
        for replication in protocol["replications"].values():
            for key in ("within_rows_spearman", "within_rows_interval", "per_row"):
                replication.pop(key)
    (destination / "comparison.json").write_text(json.dumps(older))
    bench_matrix.main(["--output_dir", str(destination), "--compare"])
    again = json.loads((destination / "comparison.json").read_text())
    media = again["protocols"]["answer_always_HasAns_f1"]["replications"][bench_matrix.COMPLETE[0]]
    assert media["within_rows_spearman"] == pytest.approx(1.0) and media["within_rows_interval"] == [1.0, 1.0]
    assert media["per_row"]["newsqa"]["spearman_interval"] == [1.0, 1.0]
    assert again["runs"] == older["runs"] and again["bootstrap"]["resamples"] == 50
    assert "| within rows | per row |" in (destination / "comparison.md").read_text()
    assert "within rows" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="has no matrix.json"):
        bench_matrix.main(["--output_dir", str(tmp_path / "nowhere"), "--compare"])


def test_earlier_rows_of_another_recipe_or_without_scores_stop_the_run_before_it_writes(tmp_path):
    earlier = run_of(tmp_path, "first", {"newsqa": [50.0, 40.0, 45.0, 55.0]}, questions=300)
    with pytest.raises(SystemExit, match=r"first/comparison.json: its rows are not parts of this matrix, the run "
                                         r"used newsqa's questions '300' \(this invocation: '500'\)"):
        bench_matrix.restore_earlier(earlier, bench_matrix_args(tmp_path, 500, ["squad_v2"]), [])
    with pytest.raises(SystemExit, match="run_qa_flags"):
        bench_matrix.restore_earlier(earlier, bench_matrix_args(tmp_path, 300, ["squad_v2"]),
                                     ["--num_train_epochs", "1"])
    (tmp_path / "first" / "matrix" / "cells" / "newsqa" / "trivia_qa" / "eval_scores.json").unlink()
    with pytest.raises(SystemExit, match="newsqa -> trivia_qa has no per-question scores"):
        bench_matrix.restore_earlier(earlier, bench_matrix_args(tmp_path, 300, ["squad_v2"]), [])
    assert not (tmp_path / "later").exists()
    with pytest.raises(SystemExit, match="no comparison.json"):
        bench_matrix.restore_earlier(str(tmp_path), bench_matrix_args(tmp_path, 300, ["squad_v2"]), [])
