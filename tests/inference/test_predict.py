"""predict.py and qa_transfer.inference on tiny models, offline: the same answers as `run_qa.py --do_predict` and
the same labels and probabilities as run_classification.py's predictions.csv; standard input and output; bad
input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import run_script_main, run_script_subprocess
from shared import REPO, SMALL_WINDOWS, read_jsonl, write_jsonl

import predict
import run_classification
import run_qa
from qa_transfer.core.errors import UsageError
from qa_transfer.inference import QAReader, TweetClassifier, load_predictor, model_kind

SAMPLE = REPO / "examples" / "qa_sample"
CLASSIFICATION = REPO / "tests" / "fixtures" / "classification"
LABEL_NAMES = ["neutral", "anti-vax", "pro-vax"]
LONG_CONTEXT = " ".join(
    ["The old mill stood by the river for many years and the people of the town came to see it."] * 8
    + ["The mill was built by Thomas Hale in 1820."]
)


def qa_records() -> list[dict]:
    """The sample's dev questions without answers, and one question on a context many windows long."""
    dev = json.loads((SAMPLE / "dev.json").read_text())
    records = [{"id": q["id"], "context": p["context"], "question": q["question"]}
               for article in dev["data"] for p in article["paragraphs"] for q in p["qas"]]
    return [*records, {"id": "long", "context": LONG_CONTEXT, "question": "Who built the mill?"}]


@pytest.fixture(scope="module")
def qa_model(tiny_qa_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qa_model")
    run_script_main(run_qa, [
        "--model_name_or_path", tiny_qa_model, "--output_dir", out, "--seed", "7",
        "--train_file", SAMPLE / "train.json", "--validation_file", SAMPLE / "dev.json", "--do_train",
        "--num_train_epochs", "2", "--learning_rate", "1e-3", "--save_strategy", "no", *SMALL_WINDOWS])
    return out


def run_qa_predict(model: Path, test_file: Path, out: Path, *flags: str) -> tuple[dict, dict]:
    """`run_qa.py --do_predict`: (its predictions, its null odds)."""
    run_script_main(run_qa, [
        "--model_name_or_path", model, "--test_file", test_file, "--do_predict", "--output_dir", out,
        *SMALL_WINDOWS, *flags])
    return (json.loads((out / "predict_predictions.json").read_text()),
            json.loads((out / "predict_null_odds.json").read_text()))


@pytest.fixture(scope="module")
def run_qa_predictions(qa_model, tmp_path_factory) -> tuple[Path, Path, Path]:
    """`run_qa.py --do_predict` on qa_records() with a model recorded as trained with a no-answer threshold that
    splits its answers in two: (the test file, that model, run_qa.py's output folder)."""
    folder = tmp_path_factory.mktemp("run_qa_predict")
    test_file = write_jsonl(folder / "test.jsonl", qa_records())
    _, odds = run_qa_predict(qa_model, test_file, folder / "threshold_0")
    middle = sorted(odds.values())[len(odds) // 2 - 1 : len(odds) // 2 + 1]
    threshold = sum(middle) / 2
    model = folder / "model"
    shutil.copytree(qa_model, model)
    info = json.loads((model / "qa_run_info.json").read_text())
    info["data_args"]["null_score_diff_threshold"] = threshold
    (model / "qa_run_info.json").write_text(json.dumps(info))
    run_qa_predict(model, test_file, folder / "out", "--null_score_diff_threshold", str(threshold))
    return test_file, model, folder / "out"


@pytest.mark.slow
def test_predict_answers_as_run_qa_predicts(run_qa_predictions, tmp_path, capsys):
    test_file, qa_model, run_qa_out = run_qa_predictions
    results = json.loads((run_qa_out / "all_results.json").read_text())
    assert results["predict_windows"] > results["predict_samples"] + 3  # contexts of several windows
    expected = json.loads((run_qa_out / "predict_predictions.json").read_text())
    expected_odds = json.loads((run_qa_out / "predict_null_odds.json").read_text())

    predict.main(["--model", str(qa_model), "--input", str(test_file), "--output", str(tmp_path / "answers.jsonl"),
                  "--batch_size", "3"])
    assert "Wrote 15 predictions" in capsys.readouterr().out
    answers = read_jsonl(tmp_path / "answers.jsonl")
    assert [a["id"] for a in answers] == [r["id"] for r in qa_records()]  # input order, input fields kept
    assert {a["id"]: a["answer"] for a in answers} == expected
    for answer in answers:
        assert answer["null_odds"] == pytest.approx(expected_odds[answer["id"]], abs=1e-4)
        assert answer["abstained"] == (answer["answer"] == "")
        if answer["abstained"]:
            assert answer["answer_start"] is None and answer["answer_end"] is None
        else:
            assert answer["context"][answer["answer_start"]:answer["answer_end"]] == answer["answer"]
        assert 0 < answer["score"] <= 1
    assert {a["abstained"] for a in answers} == {True, False}, "both an answer and an abstention are compared"


@pytest.mark.slow
def test_the_api_answers_one_pair_or_a_batch_with_the_recorded_settings(run_qa_predictions):
    _, qa_model, run_qa_out = run_qa_predictions
    reader = load_predictor(qa_model)
    assert isinstance(reader, QAReader) and model_kind(qa_model) == "question-answering"
    assert (reader.windows.max_seq_length, reader.windows.doc_stride) == (64, 16)  # the training's windows
    assert reader.version_2_with_negative is True  # trained with unanswerable questions
    expected = json.loads((run_qa_out / "predict_predictions.json").read_text())
    long = reader.answer("Who built the mill?", LONG_CONTEXT)
    assert long.text == expected["long"]
    records = qa_records()[:4]
    batch = reader.answer_batch([r["question"] for r in records], [r["context"] for r in records])
    assert [a.text for a in batch] == [expected[r["id"]] for r in records]

    # A threshold below every null odds makes the model abstain everywhere; one above them, answer everywhere.
    never = QAReader.from_pretrained(qa_model, null_score_diff_threshold=1e9).answer_batch(
        [r["question"] for r in records], [r["context"] for r in records])
    always_abstains = QAReader.from_pretrained(qa_model, null_score_diff_threshold=-1e9).answer("Who?", LONG_CONTEXT)
    assert not any(a.abstained for a in never) and always_abstains.abstained and always_abstains.text == ""
    # Without "no answer" (a model trained without unanswerable questions), every question gets its best span.
    v1 = QAReader.from_pretrained(qa_model, version_2_with_negative=False).answer("Who?", LONG_CONTEXT)
    assert not v1.abstained and v1.text and v1.null_odds is None
    assert LONG_CONTEXT[v1.start:v1.end] == v1.text
    with pytest.raises(UsageError, match="pair 1: empty question"):
        reader.answer_batch(["Who?", " "], ["Ada wrote it.", "Ada wrote it."])


@pytest.fixture(scope="module")
def cls_model(tiny_cls_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cls_model") / "out"
    run_script_main(run_classification, [
        "--model_name_or_path", tiny_cls_model, "--train_file", CLASSIFICATION / "train.csv",
        "--test_file", CLASSIFICATION / "test_unlabelled.csv", "--output_dir", out,
        "--class_names", ",".join(LABEL_NAMES), "--num_train_epochs", "2", "--max_seq_length", "64", "--seed", "0",
        "--save_strategy", "no",
    ])
    return out


@pytest.mark.slow
def test_predict_labels_as_predictions_csv(cls_model, tmp_path):
    output = tmp_path / "labels.jsonl"
    predict.main(["--model", str(cls_model), "--input", str(CLASSIFICATION / "test_unlabelled.csv"),
                  "--output", str(output)])
    labelled = read_jsonl(output)
    with open(cls_model / "predictions.csv", newline="", encoding="utf-8") as handle:
        expected = list(csv.DictReader(handle))
    assert [row["tweet"] for row in labelled] == [row["text"] for row in expected]  # the tweets as given
    assert [row["predicted_label"] for row in labelled] == [row["predicted_label"] for row in expected]
    for row, reference in zip(labelled, expected, strict=True):
        assert list(row["probabilities"]) == LABEL_NAMES
        for name in LABEL_NAMES:  # predictions.csv has 6 decimals
            assert row["probabilities"][name] == pytest.approx(float(reference[f"probability_{name}"]), abs=6e-7)

    classifier = load_predictor(cls_model)
    assert isinstance(classifier, TweetClassifier) and classifier.settings["clean_text"] is True
    one = classifier.classify(labelled[1]["tweet"])
    assert one.label == labelled[1]["predicted_label"]
    assert one.probabilities == pytest.approx(labelled[1]["probabilities"], abs=1e-6)
    # Cleaning is applied: the raw tweet is not what the model saw.
    raw = TweetClassifier.from_pretrained(cls_model)
    raw.settings["clean_text"] = False
    assert raw.classify(labelled[2]["tweet"]).probabilities != pytest.approx(
        classifier.classify(labelled[2]["tweet"]).probabilities, abs=1e-7)


def run_predict(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return run_script_subprocess("predict.py", args, tiny=False, input=stdin, timeout=300)


@pytest.mark.slow
def test_standard_input_and_output_and_a_bad_record(qa_model, tmp_path):
    records = qa_records()[:3]
    stdin = "".join(json.dumps(record) + "\n" for record in records)
    done = run_predict(["--model", str(qa_model), "--input", "-", "--output", "-"], stdin)
    assert done.returncode == 0, done.stderr
    from_stdin = [json.loads(line) for line in done.stdout.splitlines()]
    write_jsonl(tmp_path / "in.jsonl", records)
    predict.main(["--model", str(qa_model), "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "o")])
    assert from_stdin == read_jsonl(tmp_path / "o")

    # CSV on standard input; a record without its context is one error line naming the input and the line.
    bad = "question,context\nWho?,Ada wrote it.\nWhen?\n"
    done = run_predict(["--model", str(qa_model), "--input", "-", "--output", str(tmp_path / "bad.jsonl")], bad)
    assert done.returncode == 1 and not (tmp_path / "bad.jsonl").exists()
    assert done.stderr.strip().splitlines()[-1] == "error: <stdin>: line 3: 1 fields, but the header has 2"
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("content", "message"), [
    ('{"question": "Who?", "context": "Ada."}\n{"question": "Who?"}\n',
     r"in\.jsonl: line 2: missing field 'context' \(a question-answering model needs 'question' and 'context'\)"),
    ('{"question": "Who?", "context": "Ada."}\n{"question": "Who?", "context": \n',
     r"in\.jsonl: line 2: not valid JSON"),
    ('{"question": "Who?", "context": "Ada."}\n["Who?", "Ada."]\n',
     r"in\.jsonl: line 2: a record must be a JSON object"),
    ('{"question": "Who?", "context": "  "}\n', r"in\.jsonl: line 1: empty context"),
    ("", r"in\.jsonl: no records"),
])
def test_bad_qa_input_names_the_file_and_record_and_writes_nothing(qa_model, tmp_path, content, message):
    (tmp_path / "in.jsonl").write_text(content)
    with pytest.raises(UsageError, match=message):
        predict.main(["--model", str(qa_model), "--input", str(tmp_path / "in.jsonl"), "--output",
                      str(tmp_path / "out.jsonl")])
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.slow
def test_bad_tweets_and_a_folder_that_is_no_model(cls_model, tmp_path):
    (tmp_path / "in.csv").write_text("id,body\n1,vaccines work\n")
    with pytest.raises(UsageError, match=r"in\.csv: line 2: missing field 'tweet' or 'text'"):
        predict.main(["--model", str(cls_model), "--input", str(tmp_path / "in.csv"), "--output", "-"])
    (tmp_path / "in.jsonl").write_text('{"text": "vaccines work"}\n{"text": ""}\n')
    with pytest.raises(UsageError, match=r"in\.jsonl: line 2: empty text"):
        predict.main(["--model", str(cls_model), "--input", str(tmp_path / "in.jsonl"), "--output", "-"])
    (tmp_path / "in.txt").write_text("vaccines work\n")
    with pytest.raises(UsageError, match=r"in\.txt: the input must be a \.jsonl, \.json or \.csv file"):
        predict.main(["--model", str(cls_model), "--input", str(tmp_path / "in.txt"), "--output", "-"])
    with pytest.raises(UsageError, match="no such model folder|not a model folder"):
        predict.main(["--model", str(tmp_path), "--input", str(tmp_path / "in.jsonl"), "--output", "-"])
