"""score_predictions.py against an independent implementation of the official SQuAD 2.0 evaluation rules
(evaluate-v2.0.py), written here from the rules alone: every figure equal to the last digit, on SQuAD 2.0 JSON,
SQuAD 1.1 JSON, flat JSON Lines and gzip files; then the intervals, the paired comparison, missing and extra
predictions, and the one-line errors for bad files."""

from __future__ import annotations

import collections
import gzip
import json
import logging
import re
import string
from pathlib import Path

import numpy as np
import pytest
from harness import run_script_subprocess
from shared import write_jsonl

import score_predictions
from qa_transfer.core.errors import UsageError
from qa_transfer.qa.scores import ThresholdSweep, question_counts
from qa_transfer.qa.scores import score_predictions as score_file_predictions

# --- The official rules, written independently ---------------------------------------------------------------


def official_normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def official_exact(gold: str, prediction: str) -> int:
    return int(official_normalize(gold) == official_normalize(prediction))


def official_f1(gold: str, prediction: str) -> float:
    gold_tokens = official_normalize(gold).split() if gold else []
    pred_tokens = official_normalize(prediction).split() if prediction else []
    same = sum((collections.Counter(gold_tokens) & collections.Counter(pred_tokens)).values())
    if not gold_tokens or not pred_tokens:
        return int(gold_tokens == pred_tokens)
    if same == 0:
        return 0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def official_evaluate(questions: list[tuple[str, list[str]]], predictions: dict[str, str],
                      na_probs: dict[str, float] | None = None, na_prob_thresh: float = 1.0) -> dict:
    """The figures evaluate-v2.0.py prints for [(id, gold texts)] in the data's order. A question without a
    prediction is wrong (the official script drops it from its question-level scores): it scores 0 after the
    threshold and at every threshold of the search, and counts in every total."""
    has_answer = {qid: bool(golds) for qid, golds in questions}
    exact_raw, f1_raw = {}, {}
    for qid, golds in questions:
        golds = [gold for gold in golds if official_normalize(gold)] or [""]
        if qid in predictions:
            exact_raw[qid] = max(official_exact(gold, predictions[qid]) for gold in golds)
            f1_raw[qid] = max(official_f1(gold, predictions[qid]) for gold in golds)
    probs = dict(na_probs) if na_probs is not None else dict.fromkeys(predictions, 0.0)
    for qid, _ in questions:
        probs.setdefault(qid, 0.0)

    def thresholded(raw: dict) -> dict:
        return {qid: float(not has_answer[qid]) if probs[qid] > na_prob_thresh else score for qid, score in raw.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    out = collections.OrderedDict()
    groups = [("", [qid for qid, _ in questions]),
              ("HasAns_", [qid for qid, _ in questions if has_answer[qid]]),
              ("NoAns_", [qid for qid, _ in questions if not has_answer[qid]])]
    for prefix, qids in groups:
        if qids:
            out[prefix + "exact"] = 100.0 * sum(exact.get(q, 0) for q in qids) / len(qids)
            out[prefix + "f1"] = 100.0 * sum(f1.get(q, 0) for q in qids) / len(qids)
            out[prefix + "total"] = len(qids)
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            score = best_score = sum(1 for qid in raw if not has_answer[qid])
            best_thresh = 0.0
            for qid in sorted(probs, key=lambda k: probs[k]):
                if qid not in raw:
                    continue
                if has_answer[qid]:
                    score += raw[qid]
                elif predictions[qid]:
                    score -= 1
                if score > best_score:
                    best_score, best_thresh = score, probs[qid]
            out[f"best_{name}"] = 100.0 * best_score / len(questions)
            out[f"best_{name}_thresh"] = best_thresh
    return dict(out)


# --- Fixtures: one question set, written in every layout ------------------------------------------------------

WORDS = ["Rhine", "river", "the", "a", "an", "Warsaw", "1815", "Napoleon", "king", "of", "Poland", "east", "and"]


def make_questions(seed: int, count: int = 60) -> list[dict]:
    """Flat records with several gold answers, unanswerable questions, articles, punctuation and case, and an
    answer that normalises to nothing ('The')."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        words = list(rng.choice(WORDS, size=12))
        context = "The " + " ".join(words) + ", Mr. O'Neil (1815)."
        kind = i % 5
        if kind == 0:
            answers = []
        elif kind == 4 and i % 10 == 4:
            answers = ["The"]
        else:
            answers = sorted({" ".join(words[a:a + int(rng.integers(1, 4))]) for a in rng.integers(0, 9, size=2)})
        answers = [text for text in answers if text in context]
        if kind == 3:
            answers.append("O'Neil (1815).")
        records.append({"id": f"q{seed}_{i}", "title": f"T{i // 20}", "context": context, "question": f"question {i}?",
                        "answers": {"text": answers, "answer_start": [context.index(t) for t in answers]}})
    return records


def make_predictions(records: list[dict], seed: int) -> dict[str, str]:
    """Right, partly right, differently normalised, empty and wrong answers."""
    rng = np.random.default_rng(seed + 1000)
    predictions = {}
    for record in records:
        golds = record["answers"]["text"]
        choice = int(rng.integers(0, 5))
        if choice == 0:
            predictions[record["id"]] = ""
        elif choice == 1 and golds:
            predictions[record["id"]] = "  " + golds[0].upper() + "!"
        elif choice == 2 and golds:
            predictions[record["id"]] = golds[-1] + " " + str(rng.choice(WORDS))
        else:
            predictions[record["id"]] = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
    return predictions


def write_squad(path, records: list[dict], version: str) -> None:
    data = collections.OrderedDict()
    for record in records:
        paragraphs = data.setdefault(record["title"], collections.OrderedDict())
        qa = {"id": record["id"], "question": record["question"],
              "answers": [{"text": t, "answer_start": s} for t, s in zip(*record["answers"].values())]}
        if version == "v2.0":
            qa["is_impossible"] = not qa["answers"]
        paragraphs.setdefault(record["context"], []).append(qa)
    document = {"version": version, "data": [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
        for title, paragraphs in data.items()]}
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        json.dump(document, handle)


def write_json(path, content) -> str:
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def run(argv: list[str], capsys) -> tuple[dict, str]:
    assert score_predictions.main(argv) == 0
    printed = capsys.readouterr().out
    output_dir = argv[argv.index("--output_dir") + 1]
    return json.loads((Path(output_dir) / "scores.json").read_text(encoding="utf-8")), printed


def official_keys(scores: dict) -> dict:
    return {key: value for key, value in scores.items() if not key.endswith("_ci") and key in OFFICIAL_KEYS}


OFFICIAL_KEYS = {f"{prefix}{name}" for prefix in ("", "HasAns_", "NoAns_") for name in ("exact", "f1", "total")} | {
    "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"}

LAYOUTS = {
    "squad_v2_json": lambda path, records: write_squad(path / "dev.json", records, "v2.0") or path / "dev.json",
    "squad_v2_gzip": lambda path, records: write_squad(path / "dev.json.gz", records, "v2.0") or path / "dev.json.gz",
    "flat_jsonl": lambda path, records: write_jsonl(path / "dev.jsonl", records),
    "flat_jsonl_gzip": lambda path, records: write_jsonl(path / "dev.jsonl.gz", records),
    "flat_json": lambda path, records: write_json(path / "dev_flat.json", records),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("seed", [1, 2])
def test_every_figure_equals_the_official_rules_to_the_last_digit(layout, seed, tmp_path, capsys):
    records = make_questions(seed)
    data = LAYOUTS[layout](tmp_path, records)
    predictions = make_predictions(records, seed)
    rng = np.random.default_rng(seed)
    # Few distinct values: many ties, which the search takes in the file's order; scores above the 1.0 threshold;
    # the file in an order of its own, and a few questions without a score (0.0).
    na_probs = {record["id"]: float(rng.choice([-2.0, 0.0, 0.5, 0.5, 1.0, 1.5, 3.0])) for record in records}
    na_probs = dict(sorted(na_probs.items(), key=lambda item: rng.random()))
    for qid in list(na_probs)[:3]:
        del na_probs[qid]
    questions = [(record["id"], record["answers"]["text"]) for record in records]
    pred_file = write_json(tmp_path / "pred.json", predictions)
    odds_file = write_json(tmp_path / "na_prob.json", na_probs)

    scores, printed = run([str(data), pred_file, "--output_dir", str(tmp_path / "plain"),
                           "--bootstrap_resamples", "50"], capsys)
    expected = official_evaluate(questions, predictions)
    assert official_keys(scores) == expected and list(official_keys(scores)) == list(expected)
    assert f"{expected['f1']!r}" in printed

    scores, _ = run([str(data), pred_file, "--null_odds", odds_file, "--output_dir", str(tmp_path / "odds"),
                     "--bootstrap_resamples", "50"], capsys)
    expected = official_evaluate(questions, predictions, na_probs)
    assert official_keys(scores) == expected and list(official_keys(scores)) == list(expected)
    assert {"best_exact", "best_f1", "NoAns_exact"} <= set(expected)


def test_squad_1_1_data_has_no_noans_figures_and_best_only_with_null_odds(tmp_path, capsys):
    records = [record for record in make_questions(3) if record["answers"]["text"]]
    write_squad(tmp_path / "dev-v1.1.json", records, "1.1")
    predictions = make_predictions(records, 3)
    pred_file = write_json(tmp_path / "pred.json", predictions)
    questions = [(record["id"], record["answers"]["text"]) for record in records]
    scores, _ = run([str(tmp_path / "dev-v1.1.json"), pred_file, "--output_dir", str(tmp_path / "out"),
                     "--bootstrap_resamples", "20"], capsys)
    assert official_keys(scores) == official_evaluate(questions, predictions)
    assert "NoAns_total" not in scores and "best_f1" not in scores
    na_probs = {qid: i / 7 for i, qid in enumerate(predictions)}
    odds_file = write_json(tmp_path / "na.json", na_probs)
    scores, _ = run([str(tmp_path / "dev-v1.1.json"), pred_file, "--null_odds", odds_file, "--output_dir",
                     str(tmp_path / "out"), "--bootstrap_resamples", "20"], capsys)
    assert official_keys(scores) == official_evaluate(questions, predictions, na_probs)
    assert scores["best_f1"] >= scores["f1"]  # the search may answer what the 1.0 threshold abstains on


def test_the_threshold_search_ties_and_start_as_the_official_script(tmp_path, capsys):
    """Equal no-answer scores are met in the file's order: answering the unanswerable question first never beats
    the start, answering the right one first does."""
    records = [{"id": qid, "title": "t", "context": "Rhine and Warsaw", "question": "q?",
                "answers": {"text": golds, "answer_start": [0] * len(golds)}}
               for qid, golds in (("has", ["Rhine"]), ("no", []))]
    data = write_json(tmp_path / "dev.json", records)
    pred_file = write_json(tmp_path / "pred.json", {"has": "Rhine", "no": "Warsaw"})
    for order, best, thresh in ((["no", "has"], 50.0, 0.0), (["has", "no"], 100.0, 0.25)):
        odds_file = write_json(tmp_path / "na.json", dict.fromkeys(order, 0.25))
        scores, _ = run([data, pred_file, "--null_odds", odds_file, "--output_dir", str(tmp_path / "out"),
                         "--bootstrap_resamples", "20"], capsys)
        assert (scores["best_exact"], scores["best_exact_thresh"]) == (best, thresh)
        assert official_keys(scores) == official_evaluate([("has", ["Rhine"]), ("no", [])],
                                                          {"has": "Rhine", "no": "Warsaw"}, dict.fromkeys(order, 0.25))


def test_missing_predictions_count_as_wrong_and_extra_ones_are_ignored(tmp_path, capsys, caplog):
    records = make_questions(4, count=20)
    data = write_json(tmp_path / "dev.json", records)
    # Right answers: a gold answer that survives normalisation ("an" does not: it is no gold answer then).
    predictions = {record["id"]: max(record["answers"]["text"] or [""], key=lambda text: len(official_normalize(text)))
                   for record in records}
    dropped = [records[0]["id"], records[1]["id"]]  # an unanswerable and an answerable question
    for qid in dropped:
        del predictions[qid]
    predictions.update({"not_in_data_1": "x", "not_in_data_2": ""})
    pred_file = write_json(tmp_path / "pred.json", predictions)
    odds_file = write_json(tmp_path / "na.json", dict.fromkeys(predictions, 0.0))
    with caplog.at_level(logging.INFO, logger="qa_transfer.score_predictions"):
        scores, _ = run([data, pred_file, "--null_odds", odds_file, "--output_dir", str(tmp_path / "out"),
                         "--bootstrap_resamples", "20"], capsys)
    questions = [(record["id"], record["answers"]["text"]) for record in records]
    assert official_keys(scores) == official_evaluate(questions, predictions, dict.fromkeys(predictions, 0.0))
    assert scores["exact"] == 100.0 * 18 / 20 and scores["total"] == 20 and scores["best_exact"] == 90.0
    assert scores["questions"][dropped[0]] == {"exact": 0.0, "f1": 0.0, "has_answer": False, "predicted": False}
    lines = [record.getMessage() for record in caplog.records]
    assert sum("2 of 20 questions have no prediction and count as wrong" in line and dropped[0] in line
               for line in lines) == 1
    assert sum("2 predicted ids are not in the data and are ignored" in line for line in lines) == 1


def test_intervals_hold_each_figure_and_the_resampled_search_is_the_official_one(tmp_path, capsys):
    records = make_questions(5, count=80)
    data = write_json(tmp_path / "dev.json", records)
    predictions = make_predictions(records, 5)
    na_probs = {record["id"]: float(i % 7) / 3 for i, record in enumerate(records)}
    pred_file, odds_file = write_json(tmp_path / "p.json", predictions), write_json(tmp_path / "n.json", na_probs)
    scores, _ = run([data, pred_file, "--null_odds", odds_file, "--output_dir", str(tmp_path / "out")], capsys)
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1"):
        low, high = scores[f"{key}_ci"]
        assert low <= scores[key] <= high and low < high, key
    references = {record["id"]: record["answers"] for record in records}
    scored = score_file_predictions(predictions, references, na_probs)
    ones = np.ones((1, len(records)), dtype=int)
    for name in ("exact", "f1"):
        assert scored.sweeps[name].best_scores(ones)[0] == pytest.approx(scores[f"best_{name}"], abs=1e-9)
    again, _ = run([data, pred_file, "--null_odds", odds_file, "--output_dir", str(tmp_path / "out")], capsys)
    assert again["f1_ci"] == scores["f1_ci"] and again["best_f1_ci"] == scores["best_f1_ci"]  # seeded


def test_the_sweep_on_counts_is_the_search_on_the_drawn_questions():
    references = {"a": {"text": ["x"]}, "b": {"text": []}, "c": {"text": ["y"]}}
    raw = {"a": 1.0, "b": 0.0, "c": 0.5}
    sweep = ThresholdSweep.build(list(references), raw, {"a": 0.1, "b": 0.2, "c": 0.3},
                                 {"a": True, "b": False, "c": True}, {"a": "x", "b": "z", "c": "y w"})
    # Drawn: a twice, b once. Abstain on all: 1 of 3; answer a: 3; then b: 2.
    counts = question_counts(np.array([[0, 0, 1]]), 3)
    assert counts.tolist() == [[2, 1, 0]]
    assert sweep.best_scores(counts).tolist() == [100.0]
    assert sweep.best_scores(question_counts(np.array([[1, 1, 2]]), 3)).tolist() == pytest.approx([100 * 2 / 3])


def test_compare_gives_the_paired_difference_on_each_side_of_zero(tmp_path, capsys):
    records = [{"id": f"q{i}", "title": "t", "context": "yes no", "question": "q?",
                "answers": {"text": ["yes"] if i < 40 else [], "answer_start": [0] if i < 40 else []}}
               for i in range(50)]
    data = write_json(tmp_path / "dev.json", records)
    base = {f"q{i}": ("yes" if i < 20 else "no") if i < 40 else "" for i in range(50)}
    better = {f"q{i}": ("yes" if i < 30 else "no") if i < 40 else "" for i in range(50)}
    base_file, better_file = write_json(tmp_path / "a.json", base), write_json(tmp_path / "b.json", better)
    odds = write_json(tmp_path / "na.json", {f"q{i}": i / 50 for i in range(50)})
    scores, printed = run([data, base_file, "--compare", better_file, base_file, "--null_odds", odds,
                           "--compare_null_odds", odds, odds, "--output_dir", str(tmp_path / "out")], capsys)
    row = scores["compare"][better_file]["differences"]["HasAns_exact"]
    assert row["difference"] == 25.0 and 0 < row["interval"][0] < 25 < row["interval"][1]
    assert (row["below_zero"], row["above_zero"]) == (0.0, 1.0)  # right on a superset of questions: always ahead
    assert scores["compare"][better_file]["differences"]["NoAns_f1"]["interval"] == [0.0, 0.0]
    assert scores["compare"][better_file]["differences"]["best_exact"]["difference"] == pytest.approx(
        scores["compare"][better_file]["figures"]["best_exact"] - scores["best_exact"])
    same = scores["compare"][base_file]["differences"]
    assert all(row["interval"] == [0.0, 0.0] and row["below_zero"] == row["above_zero"] == 0.0
               for row in same.values())
    assert f"{better_file} - {base_file}" in printed


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('["a", "b"]', "not a JSON object of question id -> an answer text, but a list"),
    ('{"q1": ["yes"]}', "question 'q1' holds [\"yes\"], not an answer text"),
])
def test_a_bad_predictions_file_is_one_error_naming_it(content, message, tmp_path):
    data = write_json(tmp_path / "dev.json", make_questions(6, count=5))
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        score_predictions.main([data, str(bad)])
    assert str(bad) in str(info.value)


def test_the_command_line_prints_one_error_line_and_writes_nothing(tmp_path):
    data = write_json(tmp_path / "dev.json", make_questions(7, count=5))
    odds = tmp_path / "na.json"
    odds.write_text('{"q7_0": "high"}', encoding="utf-8")
    pred = write_json(tmp_path / "pred.json", {})
    done = run_script_subprocess("score_predictions.py", [data, pred, "--null_odds", odds, "--output_dir",
                                                          tmp_path / "out"], tiny=False, timeout=120)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {odds}: question 'q7_0' holds \"high\", not a number"]
    assert not (tmp_path / "out").exists()
