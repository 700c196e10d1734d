"""overlap.py: overlap values by hand, buckets, per-bucket scores and the top-sentence shares of a fixture
cell, caching; and `cross_eval.py --analysis overlap` end to end on a tiny model, rerun and merged."""

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from harness import run_script_main
from shared import REPO, SMALL_WINDOWS

import cross_eval
from qa_transfer.matrix import overlap
from qa_transfer.qa.scores import bootstrap_interval, question_scores

SAMPLE = REPO / "examples" / "qa_sample"
NEWS = REPO / "examples" / "news_sample"

# Sentences: 0 [0, 53), 1 [54, 104), 2 [105, 176), 3 [177, 211).
CONTEXT = ("The Old Market Hall was built in 1712 from red brick. Farmers sold cheese and wool there every Thursday. "
           "In 1980 the hall was turned into a concert venue that seats 900 people. Its clock tower is 45 metres tall.")
# id: (question, answer or None, the prediction)
QUESTIONS = {
    # {old, market, hall, built}: all four in sentence 0, which holds the answer -> 1.0, high; top sentence 0.
    "built": ("When was the Old Market Hall built?", "1712", "1712"),
    # {did, farmers, sell, hall}: "farmers" in sentence 1 -> 0.25, low ("sold" is not "sell"); sentences 0, 1 and 2
    # tie at 1/4, so the top sentence is the earliest, 0: the gold answer lies elsewhere.
    "sold": ("What did farmers sell in the hall?", "cheese and wool", "was"),
    # {people, does, venue, seat}: "people", "venue" in sentence 2 -> 0.5, middle; top sentence 2.
    "seats": ("How many people does the venue seat?", "900", ""),
    # {tall, clock, tower, metres}: all in sentence 3 -> 1.0, high.
    "tower": ("How tall is the clock tower in metres?", "45 metres", "45 metres"),
    # No content word: overlap 0, low, and no top sentence.
    "what": ("What is it?", "red brick", "red brick"),
    "designer": ("Who designed the hall?", None, ""),  # unanswerable: not analysed
}
FEATURES = datasets.Features({
    "id": datasets.Value("string"), "title": datasets.Value("string"), "context": datasets.Value("string"),
    "question": datasets.Value("string"),
    "answers": {"text": datasets.Sequence(datasets.Value("string")),
                "answer_start": datasets.Sequence(datasets.Value("int32"))},
})
BOOTSTRAP = {"resamples": 200, "confidence": 0.95, "seed": 1}


def fixture_examples() -> datasets.Dataset:
    return datasets.Dataset.from_list([
        {"id": qid, "title": "hall", "context": CONTEXT, "question": question,
         "answers": {"text": [answer] if answer else [], "answer_start": [CONTEXT.index(answer)] if answer else []}}
        for qid, (question, answer, _) in QUESTIONS.items()], features=FEATURES)


@pytest.fixture
def fixture_cell(tmp_path):
    """A stored cell as cross_eval leaves it: predictions, n-best lists with offsets, per-question scores."""
    predictions = {qid: prediction for qid, (_, _, prediction) in QUESTIONS.items()}
    second_was = CONTEXT.index("was", CONTEXT.index("was") + 1)  # in sentence 2; the first "was" is in sentence 0
    nbest = {
        "built": [{"text": "1712", "offsets": [33, 37]}],
        "sold": [{"text": "hall", "offsets": [CONTEXT.index("hall"), CONTEXT.index("hall") + 4]},
                 {"text": "was", "offsets": [second_was, second_was + 3]}],
        # "tower" has no n-best list: its answer is placed by its first occurrence.
    }
    references = {qid: {"text": [answer] if answer else [], "answer_start": [0] if answer else []}
                  for qid, (_, answer, _) in QUESTIONS.items()}
    scores = {qid: {"exact": s.exact, "f1": s.f1, "has_answer": s.has_answer}
              for qid, s in question_scores(predictions, references).items()}
    for name, content in (("eval_predictions.json", predictions), ("eval_nbest_predictions.json", nbest),
                          ("eval_scores.json", scores)):
        (tmp_path / name).write_text(json.dumps(content))
    return tmp_path, {"settings": {"dataset_source": "hall"}, "bootstrap": BOOTSTRAP}, scores


def test_words_lower_case_split_at_punctuation_and_drop_stop_words():
    assert overlap.content_words("What is the children's HOSPITAL called?") == {"children", "hospital", "called"}
    assert overlap.content_words("How many countries did the runners come from?") == \
        {"countries", "did", "runners", "come"}
    assert overlap.content_words("What is it?") == set()
    assert overlap.overlap({"runners", "countries", "did", "come"},
                              "Runners from forty countries took part in the city marathon.") == 0.5
    assert overlap.overlap(set(), "anything") == 0.0


def test_buckets_have_fixed_thresholds():
    assert [overlap.bucket_of(v) for v in (0.0, 0.33, 1 / 3, 0.5, 0.66, 2 / 3, 1.0)] == \
        ["low", "low", "middle", "middle", "middle", "high", "high"]


def test_an_answer_lies_in_the_sentence_its_first_character_falls_in():
    spans = [(0, 10), (11, 20)]
    assert overlap.sentence_of(spans, "abc", 3) == 0
    assert overlap.sentence_of(spans, "abc", 11) == 1
    assert overlap.sentence_of(spans, " abc", 10) == 1  # the leading space is passed over


def test_question_overlaps_by_hand():
    questions = overlap.question_overlaps(fixture_examples())
    assert "designer" not in questions
    by_hand = {"built": (1.0, "high", 0, 0), "sold": (0.25, "low", 1, 0), "seats": (0.5, "middle", 2, 2),
               "tower": (1.0, "high", 3, 3), "what": (0.0, "low", 0, None)}
    assert {qid: (q["overlap"], q["bucket"], q["answer_sentence"], q["top_sentence"])
            for qid, q in questions.items()} == by_hand


def test_a_cell_by_bucket_and_its_top_sentence_shares(fixture_cell):
    cell_dir, cell, scores = fixture_cell
    analysis = overlap.OverlapAnalysis()
    summary = analysis.cell(str(cell_dir), cell, "hall", fixture_examples())
    stored = json.loads((cell_dir / overlap.OVERLAP_FILE).read_text())
    assert stored["summary"] == summary and analysis.computed == 1
    # "sold" placed by its n-best offsets (the second "was"), "tower" by its first occurrence, "seats" unanswered.
    assert {qid: row["predicted_sentence"] for qid, row in stored["questions"].items()} == \
        {"built": 0, "sold": 2, "seats": None, "tower": 3, "what": 0}
    buckets = summary["buckets"]
    assert sum(part["questions"] for part in buckets.values()) == summary["questions"] == 5
    assert [buckets[name]["questions"] for name in overlap.BUCKETS] == [2, 1, 2]
    assert summary["HasAns_f1"] == pytest.approx(60.0)
    members = {"low": ["sold", "what"], "middle": ["seats"], "high": ["built", "tower"]}
    for name, ids in members.items():
        f1 = np.array([scores[qid]["f1"] for qid in ids])
        assert buckets[name]["HasAns_f1"] == pytest.approx(100 * f1.mean())
        assert buckets[name]["HasAns_exact"] == pytest.approx(100 * np.mean([scores[qid]["exact"] for qid in ids]))
        assert buckets[name]["HasAns_f1_ci"] == list(bootstrap_interval(f1, 200, 0.95, 1))
        assert buckets[name]["change"] == pytest.approx(buckets[name]["HasAns_f1"] - 60.0)
    assert [buckets[name]["HasAns_f1"] for name in overlap.BUCKETS] == pytest.approx([50.0, 0.0, 100.0])
    # Answered, with a top sentence: built (top), sold (not top; gold elsewhere), tower (top).
    assert summary["top_sentence"] == pytest.approx({"answers": 3, "model": 200 / 3, "gold": 200 / 3,
                                                     "answers_gold_elsewhere": 1, "model_gold_elsewhere": 0.0})


def test_a_cell_is_deterministic_and_recomputed_only_when_its_settings_change(fixture_cell, monkeypatch):
    cell_dir, cell, _ = fixture_cell
    path = cell_dir / overlap.OVERLAP_FILE
    overlap.OverlapAnalysis().cell(str(cell_dir), cell, "hall", fixture_examples())
    first = path.read_bytes()
    path.unlink()
    overlap.OverlapAnalysis().cell(str(cell_dir), cell, "hall", fixture_examples())
    assert path.read_bytes() == first

    def no_computing(*args):
        raise AssertionError("a stored analysis with the same settings must be reused")

    with monkeypatch.context() as patch:
        patch.setattr(overlap, "question_overlaps", no_computing)
        analysis = overlap.OverlapAnalysis()
        analysis.cell(str(cell_dir), cell, "hall", fixture_examples())
        assert (analysis.computed, analysis.reused) == (0, 1)
    for changed in ({**cell, "bootstrap": {**BOOTSTRAP, "resamples": 100}},
                    {**cell, "settings": {"dataset_source": "other"}}):
        analysis = overlap.OverlapAnalysis()
        analysis.cell(str(cell_dir), changed, "hall", fixture_examples())
        assert analysis.computed == 1
    predictions = json.loads((cell_dir / "eval_predictions.json").read_text())
    (cell_dir / "eval_predictions.json").write_text(json.dumps({**predictions, "seats": "900"}))
    analysis = overlap.OverlapAnalysis()
    analysis.cell(str(cell_dir), changed, "hall", fixture_examples())
    assert analysis.computed == 1 and json.loads(path.read_text())["questions"]["seats"]["predicted_sentence"] == 2


# --- End to end --------------------------------------------------------------------------------------


def run_analysis(model, out, *datasets_given) -> int:
    argv = ["--models", model, "--output_dir", out, "--per_device_eval_batch_size", "8", *SMALL_WINDOWS,
            "--version_2_with_negative", "false",  # an untrained model abstains everywhere otherwise
            "--analysis", "overlap", "--datasets", *datasets_given]
    return run_script_main(cross_eval, argv)


@pytest.mark.slow
def test_cross_eval_analysis_end_to_end_reruns_from_stored_cells_and_merges(tiny_qa_model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    squad, news = f"squad_v2={SAMPLE / 'dev.json'}", f"newsqa={NEWS / 'dev.jsonl'}"
    assert run_analysis(tiny_qa_model, out, squad, news) == 0
    report = json.loads((out / "analysis.json").read_text())
    matrix = json.loads((out / "matrix.json").read_text())
    row = report["rows"][0]
    assert report["columns"] == ["squad_v2", "newsqa"] and str(tmp_path) not in (out / "analysis.json").read_text()
    for column, answerable in (("squad_v2", 10), ("newsqa", 7)):
        summary = report["cells"][row][column]["metrics"]
        assert sum(part["questions"] for part in summary["buckets"].values()) == summary["questions"] == answerable
        assert summary["HasAns_f1"] == pytest.approx(
            cross_eval.cell_value(matrix["cells"][row][column]["metrics"], "HasAns_f1"))
        overlaps = json.loads((out / "cells" / row / column / overlap.OVERLAP_FILE).read_text())["questions"]
        assert len(overlaps) == answerable
    # "Who won the marathon?": {won, marathon}; the answer's sentence says "winner", the first says "marathon".
    won = json.loads((out / "cells" / row / "newsqa" / overlap.OVERLAP_FILE).read_text())["questions"][
        "news_marathon_2"]
    assert (won["overlap"], won["bucket"], won["answer_sentence"], won["top_sentence"]) == (0.0, "low", 1, 0)
    markdown = (out / "analysis.md").read_text()
    assert "## squad_v2" in markdown and "## newsqa" in markdown and "n=" in markdown
    assert (out / "overlap.png").stat().st_size > 0

    # A rerun over the finished cells runs no model and computes no analysis.
    def stamps(folder: Path) -> dict[str, int]:
        return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.glob("cells/*/*/*.json")}

    def forbidden(*args, **kwargs):
        raise AssertionError("nothing new may be computed")

    monkeypatch.setattr(cross_eval.CellEvaluator, "evaluate", forbidden)
    monkeypatch.setattr(overlap, "question_overlaps", forbidden)
    again = tmp_path / "again"
    shutil.copytree(out, again)  # the copies keep their modification times
    assert run_analysis(tiny_qa_model, again, squad, news) == 0
    assert json.loads((again / "analysis.json").read_text())["cells"] == report["cells"]
    assert stamps(again) == stamps(out) and len(stamps(out)) == 12  # 6 files a cell, overlap.json one

    # A run on one column keeps the other column's analysis, marked as an earlier run's.
    assert run_analysis(tiny_qa_model, again, news) == 0
    merged = json.loads((again / "analysis.json").read_text())
    assert merged["columns"] == ["newsqa", "squad_v2"]
    assert merged["cells"][row]["squad_v2"] == {**report["cells"][row]["squad_v2"], "from_earlier_run": True}
    assert "from_earlier_run" not in merged["cells"][row]["newsqa"]
    assert f"| {row}* |" in (again / "analysis.md").read_text()


def test_an_unknown_analysis_is_one_clear_error():
    with pytest.raises(ValueError, match="--analysis takes overlap"):
        cross_eval.CrossEvalArguments(models="m", analysis=["lexical"])
