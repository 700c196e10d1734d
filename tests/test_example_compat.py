"""Command lines written for the transformers examples (question-answering/run_qa.py and
text-classification/run_classification.py) run here: their spellings are aliases of ours, offline."""

import json
import logging
from pathlib import Path

import pytest
from datasets import Dataset
from harness import run_script_main
from shared import REPO

import cross_eval
import run_classification
import run_qa
from qa_transfer.classification.data import join_text_columns
from qa_transfer.core.arguments import hub_options
from qa_transfer.core.errors import QADataError

SAMPLE = REPO / "examples" / "qa_sample"
CLASSIFICATION = REPO / "tests" / "fixtures" / "classification"


@pytest.mark.slow
def test_the_squad_v2_readme_command_runs_with_local_data_and_a_small_size(tiny_qa_model, tmp_path, caplog):
    # The example README's SQuAD 2.0 command; only the model, the data (--dataset_name squad_v2 -> local files) and
    # the size (windows, steps, questions) changed.
    command = f"""
        --model_name_or_path {tiny_qa_model}
        --train_file {SAMPLE / 'train.json'} --validation_file {SAMPLE / 'dev.json'}
        --do_train --do_eval --version_2_with_negative
        --per_device_train_batch_size 12 --learning_rate 3e-5 --num_train_epochs 2
        --max_seq_length 64 --doc_stride 16 --max_query_length 16 --max_steps 2
        --max_train_samples 12 --max_eval_samples 6
        --output_dir {tmp_path / 'debug_squad'}
    """.split()
    with caplog.at_level(logging.INFO, logger="qa_transfer"):
        run_script_main(run_qa, command)
    out = tmp_path / "debug_squad"
    info = json.loads((out / "qa_run_info.json").read_text())
    assert info["version_2_with_negative"] is True and info["train_samples"] == 12
    assert json.loads((out / "eval_results.json").read_text())["eval_samples"] == 6
    notes = [record.getMessage() for record in caplog.records if record.getMessage().startswith("note: ")]
    assert len(notes) == 2 and "--max_train_samples counts questions" in notes[1]


def qa_arguments(*flags: str):
    return run_qa.parse_arguments(["--model_name_or_path", "m", "--do_eval", "--output_dir", "o", *flags])


def test_version_2_with_negative_is_a_switch_and_still_takes_a_value():
    assert qa_arguments("--version_2_with_negative")[1].version_2_with_negative is True
    assert qa_arguments("--version_2_with_negative", "false")[1].version_2_with_negative is False
    assert qa_arguments("--version_2_with_negative", "true", "--doc_stride", "64")[1].version_2_with_negative is True
    assert qa_arguments()[1].version_2_with_negative is None  # decided from the data


@pytest.mark.parametrize("spelling", ["--dataset", "--dataset_name"])
@pytest.mark.parametrize(("given", "config", "meant"), [
    ("squad_v2", None, "squad_v2"), ("rajpurkar/squad_v2", None, "squad_v2"),
    ("rajpurkar/squad", "plain_text", "squad"), ("rajpurkar/squad", "other", "rajpurkar/squad"),
    ("someone/qa_set", None, "someone/qa_set"),
])
def test_a_dataset_name_means_our_dataset_or_a_hub_id(spelling, given, config, meant):
    flags = [spelling, given, *(["--dataset_config_name", config] if config else [])]
    assert qa_arguments(*flags)[1].dataset == meant


@pytest.mark.slow
def test_offline_a_hub_dataset_name_gives_our_error_not_unrecognized(tiny_qa_model, tmp_path):
    common = ["--model_name_or_path", str(tiny_qa_model), "--do_eval", "--output_dir", str(tmp_path / "o")]
    with pytest.raises(QADataError, match=r"rajpurkar/squad_v2/validation: cannot load the hub copy .*--data_dir"):
        run_script_main(run_qa, [*common, "--dataset_name", "squad_v2"], tiny=False)
    with pytest.raises(QADataError, match=r"unknown dataset 'someone/qa_set': not one of .*squad_v2"):
        run_script_main(run_qa, [*common, "--dataset_name", "someone/qa_set", "--dataset_config_name", "x"], tiny=False)


def test_token_and_trust_remote_code_reach_from_pretrained_only_when_given():
    model_args = qa_arguments()[0]
    assert (model_args.token, model_args.trust_remote_code) == (None, False)
    assert hub_options("c", "main") == {"cache_dir": "c", "revision": "main"}
    given = qa_arguments("--token", "hf_x", "--trust_remote_code")[0]
    options = hub_options(given.cache_dir, given.model_revision, given.token, given.trust_remote_code)
    assert options["token"] == "hf_x" and options["trust_remote_code"] is True


def test_a_config_file_may_use_the_example_names(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "dataset_name": "rajpurkar/squad_v2", "do_eval": True,
                                  "output_dir": "o"}))
    assert run_qa.parse_arguments([str(config)])[1].dataset == "squad_v2"


def test_cross_eval_takes_the_example_spellings(tmp_path):
    args, eval_args, _ = cross_eval.parse_arguments([
        "--model_name_or_path", str(tmp_path), "--dataset_name", "rajpurkar/squad_v2", "news=dev.json",
        "--version_2_with_negative", "--max_seq_length", "256",
    ])
    assert args.models == str(tmp_path) and args.datasets == ["squad_v2", "news=dev.json"]
    assert eval_args.version_2_with_negative is True and eval_args.max_seq_length == 256


@pytest.mark.slow
def test_the_classification_readme_command_runs_with_local_data_and_a_small_size(tiny_cls_model, tmp_path):
    # The example README's run_classification.py command; only the model, the data (--dataset_name ag_news ->
    # local files) and the size (sequence length, steps) changed.
    command = [
        "--model_name_or_path", str(tiny_cls_model),
        "--train_file", str(CLASSIFICATION / "train.csv"), "--validation_file", str(CLASSIFICATION / "validation.csv"),
        "--shuffle_train_dataset", "--metric_name", "accuracy",
        "--text_column_name", "tweet", "--text_column_delimiter", "\n", "--label_column_name", "label",
        "--do_train", "--do_eval", "--max_seq_length", "64", "--per_device_train_batch_size", "32",
        "--learning_rate", "2e-5", "--num_train_epochs", "1", "--max_steps", "2",
        "--output_dir", str(tmp_path / "ag_news"),
    ]
    run_script_main(run_classification, command)
    results = json.loads((tmp_path / "ag_news" / "all_results.json").read_text())
    assert "eval_accuracy" in results and results["eval_samples"] > 0


@pytest.mark.parametrize(("flags", "field", "value"), [
    (["--text_column_names", "title,body"], "text_column", "title,body"),
    (["--text_column_name", "body"], "text_column", "body"),
    (["--label_column_name", "stance"], "label_column", "stance"),
    (["--dataset_name", "ag_news", "--dataset_config_name", "default"], "dataset_config_name", "default"),
    (["--shuffle_train_dataset", "--shuffle_seed", "3"], "shuffle_seed", 3),
])
def test_classification_aliases_set_our_options(flags, field, value):
    _, data_args, _ = run_classification.parse_arguments(["--model_name_or_path", "m", "--train_file", "t.csv", *flags])
    assert getattr(data_args, field) == value


def test_a_metric_name_we_do_not_report_is_refused(capsys):
    with pytest.raises(SystemExit):
        run_classification.parse_arguments(["--model_name_or_path", "m", "--metric_name", "bleu"])
    assert "--metric_name/--metric-name: invalid choice: 'bleu'" in capsys.readouterr().err


def test_several_text_columns_are_joined_by_the_delimiter():
    dataset = Dataset.from_dict({"title": ["A", "B"], "body": ["x", "y"], "label": [0, 1]})
    joined = join_text_columns(dataset, Path("t.csv"), "title,body", "\n")
    assert joined["title,body"] == ["A\nx", "B\ny"]
    assert join_text_columns(dataset, Path("t.csv"), "title", " ") is dataset
