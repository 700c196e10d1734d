"""QA and classification with the other encoder families, offline on tiny random models: RoBERTa (byte-level
BPE, <s>/</s></s>, no token_type_ids, pad id 1), MPNet (WordPiece, the same special tokens) and DeBERTa-v2
(sentencepiece-style Unigram, tokens that carry the space before a word). BERT is covered by the other tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from harness import run_script_main
from shared import REPO, SMALL_WINDOWS, qa_record, windows_of
from tiny_models import save_tiny_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import cross_eval
import run_classification
import run_qa
from qa_transfer.qa.arguments import QAEvalArguments, WindowConfig, check_qa_tokenizer
from qa_transfer.qa.data import FLAT_FEATURES
from utils_qa import postprocess_qa_predictions

SAMPLE = REPO / "examples" / "qa_sample"
CLASSIFICATION = REPO / "tests" / "fixtures" / "classification"
FAMILIES = ["roberta", "mpnet", "deberta-v2"]
LONG_CONTEXT = (
    "The old tower stands on the north bank of the river. " * 5
    + "The  museum was built in 1887 by the city.\n"  # two spaces and a newline: offsets must skip them
    + "People walk on the bridge every day. " * 5
)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def qa_model(family, tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp(f"{family}_qa"), family, task="qa")


@pytest.fixture(scope="module")
def cls_model(family, tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp(f"{family}_cls"), family, task="cls", num_labels=3)


def test_tokenizers_are_the_family_they_claim(family, qa_model):
    tokenizer = AutoTokenizer.from_pretrained(qa_model)
    encoded = tokenizer("when was it built ?", "the museum was built in 1887 .")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    if family in ("roberta", "mpnet"):
        assert tokenizer.pad_token_id == 1 and "token_type_ids" not in encoded
        assert tokens[0] == "<s>" and tokens.count("</s>") == 3, tokens  # <s> q </s></s> c </s>
    else:
        assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and any(t.startswith("▁") for t in tokens)


@pytest.mark.parametrize("answer", ["1887", "museum", "the city", "People walk"])
def test_windows_map_back_to_the_answer_and_abstain_on_the_first_token(family, qa_model, answer):
    tokenizer = AutoTokenizer.from_pretrained(qa_model)
    config = WindowConfig(max_seq_length=48, doc_stride=16, max_query_length=16)
    records = [qa_record("a", "When was the museum built?", LONG_CONTEXT, answer),
               qa_record("u", "Who painted the bridge?", LONG_CONTEXT, None)]
    features = windows_of(tokenizer, records, config)
    n = len(features["input_ids"])
    labelled = [i for i in range(n) if features["start_positions"][i] != 0]
    assert labelled and all(features["example_id"][i] == "a" for i in labelled)
    assert labelled[0] > 0, "the answer is only in a later window"
    for i in range(n):
        offsets = features["offset_mapping"][i]
        start, end = features["start_positions"][i], features["end_positions"][i]
        if i in labelled:
            assert LONG_CONTEXT[offsets[start][0] : offsets[end][1]] == answer
        else:  # unanswerable question, or a window without the whole answer: the first token, outside the context
            assert start == end == 0 and features["context_start"][i] > 0
            assert features["input_ids"][i][0] == tokenizer.cls_token_id
        for token in range(features["context_start"][i], features["context_end"][i] + 1):
            token_start, token_end = offsets[token]
            assert token_start == token_end or not LONG_CONTEXT[token_start].isspace()

    # Post-processing turns logits peaked on the labels back into the exact answer, and on token 0 into "".
    from datasets import Dataset

    examples = Dataset.from_list(records, features=FLAT_FEATURES)
    feature_set = Dataset.from_dict({key: features[key] for key in
                                     ("example_id", "offset_mapping", "context_start", "context_end")})
    width = max(len(ids) for ids in features["input_ids"])
    start_logits, end_logits = np.zeros((n, width)), np.zeros((n, width))
    for i in range(n):
        start_logits[i, features["start_positions"][i]] = end_logits[i, features["end_positions"][i]] = 10.0
        if i in labelled:
            start_logits[i, 0] = end_logits[i, 0] = -10.0
    output = postprocess_qa_predictions(examples, feature_set, start_logits, end_logits, version_2_with_negative=True)
    assert output.predictions == {"a": answer, "u": ""}


def test_left_padding_and_a_stride_too_long_for_the_tokenizer_are_refused(family, qa_model):
    tokenizer = AutoTokenizer.from_pretrained(qa_model)
    special = tokenizer.num_special_tokens_to_add(pair=True)
    arguments = QAEvalArguments(max_seq_length=64, doc_stride=64 - 16 - special - 1, max_query_length=16)
    assert arguments.window_config(tokenizer).doc_stride == 64 - 16 - special - 1
    with pytest.raises(ValueError, match="--doc_stride"):
        QAEvalArguments(max_seq_length=64, doc_stride=64 - 16 - special, max_query_length=16).window_config(tokenizer)
    tokenizer.padding_side = "left"
    with pytest.raises(ValueError, match="right padding"):
        check_qa_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def trained_qa(qa_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qa_run")
    run_script_main(run_qa, [
        "--model_name_or_path", qa_model, "--output_dir", out, "--seed", "0",
        "--train_file", SAMPLE / "train.json", "--validation_file", SAMPLE / "dev.json", "--do_train", "--do_eval",
        "--max_steps", "3", "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3", "--save_strategy", "no",
        *SMALL_WINDOWS,
    ])
    return out


@pytest.mark.slow
def test_qa_trains_evaluates_predicts_and_cross_evaluates(trained_qa, tmp_path):
    results = json.loads((trained_qa / "all_results.json").read_text())
    assert results["eval_samples"] == 14 and results["train_windows"] > results["train_samples"] == 42
    assert 0 <= results["eval_f1"] <= 100 and results["eval_NoAns_total"] > 0
    eval_predictions = json.loads((trained_qa / "eval_predictions.json").read_text())
    assert len(eval_predictions) == 14

    # Prediction from the saved model gives the evaluation's answers.
    out = tmp_path / "predict"
    run_script_main(run_qa, [
        "--model_name_or_path", trained_qa, "--output_dir", out, "--test_file", SAMPLE / "dev.json", "--do_predict",
        "--version_2_with_negative", "true", "--per_device_eval_batch_size", "3", *SMALL_WINDOWS,
    ])
    assert json.loads((out / "predict_predictions.json").read_text()) == eval_predictions

    # A cross-evaluation cell on the same file equals run_qa.py --do_eval.
    matrix_dir = tmp_path / "matrix"
    run_script_main(cross_eval, [
        "--models", trained_qa, "--output_dir", matrix_dir, "--per_device_eval_batch_size", "8",
        "--datasets", f"squad_v2={SAMPLE / 'dev.json'}", *SMALL_WINDOWS,
    ])
    (cell_file,) = (matrix_dir / "cells").glob("*/squad_v2/metrics.json")
    cell = json.loads(cell_file.read_text())["metrics"]
    assert (cell["f1"], cell["exact"], cell["windows"]) == (results["eval_f1"], results["eval_exact"],
                                                             results["eval_windows"])


def read_probabilities(path: Path) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(value) for key, value in row.items() if key.startswith("probability_")] for row in rows])


@pytest.mark.slow
def test_classification_trains_and_padding_does_not_change_predictions(cls_model, tmp_path):
    out = tmp_path / "cls"
    run_script_main(run_classification, [
        "--model_name_or_path", cls_model, "--train_file", CLASSIFICATION / "train.csv",
        "--validation_file", CLASSIFICATION / "validation.csv", "--test_file", CLASSIFICATION / "test_unlabelled.csv",
        "--output_dir", out, "--class_names", "neutral,anti-vax,pro-vax", "--max_steps", "3",
        "--per_device_eval_batch_size", "8", "--max_seq_length", "64", "--save_strategy", "no",
        "--freeze_lower_layers", "1",
    ])
    results = json.loads((out / "all_results.json").read_text())
    assert results["eval_samples"] > 0 and 0 <= results["eval_accuracy"] <= 1
    # --freeze_lower_layers 1: the embeddings and layer 0 keep their weights, layer 1 and the head train.
    before, after = (AutoModelForSequenceClassification.from_pretrained(path).state_dict() for path in (cls_model, out))
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and not any(".embeddings." in name or ".layer.0." in name for name in changed), changed
    assert any(".layer.1." in name for name in changed), changed
    batched = read_probabilities(out / "predictions.csv")

    # One tweet per batch (no padding) gives the same probabilities as batches padded with the family's pad id.
    single = tmp_path / "single"
    run_script_main(run_classification, [
        "--model_name_or_path", out, "--test_file", CLASSIFICATION / "test_unlabelled.csv", "--output_dir", single,
        "--per_device_eval_batch_size", "1", "--max_seq_length", "64",
    ])
    np.testing.assert_allclose(read_probabilities(single / "predictions.csv"), batched, atol=1e-5)
