"""run_qa.py end to end on the tiny BERT: outputs, prediction, bad input, and 2-process parity."""

import json
import shutil
from pathlib import Path

import pytest
from distributed import accelerate_launch
from harness import run_script_main, script_arguments
from shared import REPO, SMALL_WINDOWS

import run_qa
from qa_transfer.core.errors import ArgumentError
from qa_transfer.core.scripts import run_script

SAMPLE = REPO / "examples" / "qa_sample"


def common(model, out):
    return ["--model_name_or_path", model, "--output_dir", out, "--seed", "7", "--per_device_eval_batch_size", "4",
            *SMALL_WINDOWS]


@pytest.fixture(scope="module")
def trained_run(tiny_qa_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa_run")
    run_script_main(run_qa, common(tiny_qa_model, out) + [
        "--train_file", SAMPLE / "train.json", "--validation_file", SAMPLE / "dev.json",
        "--do_train", "--do_eval", "--num_train_epochs", "2", "--per_device_train_batch_size", "8",
        "--eval_strategy", "epoch", "--logging_steps", "5", "--learning_rate", "1e-3",
        "--train_sampling_strategy", "group_by_length",  # must not reorder evaluation batches
    ])
    return out


@pytest.mark.slow
def test_train_and_eval_write_every_output(trained_run):
    out = trained_run
    for name in ("all_results.json", "train_results.json", "eval_results.json", "eval_predictions.json",
                 "eval_nbest_predictions.json", "eval_null_odds.json", "trainer_state.json", "loss_curve.png",
                 "qa_run_info.json", "config.json", "model.safetensors"):
        assert (out / name).is_file(), name
    results = json.loads((out / "all_results.json").read_text())
    for key in ("exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1",
                "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh", "loss", "samples"):
        assert f"eval_{key}" in results, key
    assert results["eval_total"] == 14 and results["eval_samples"] == 14
    assert results["train_samples"] == 42 and results["train_windows"] > 42  # long contexts -> several windows
    predictions = json.loads((out / "eval_predictions.json").read_text())
    odds = json.loads((out / "eval_null_odds.json").read_text())
    assert set(predictions) == set(odds) and len(predictions) == 14
    assert len(set(odds.values())) > 1, "null odds are real score differences, not a constant"
    # The predictions follow the null odds at threshold 0.
    assert all((text == "") == (odds[qid] > 0) for qid, text in predictions.items())
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert sum("eval_loss" in h for h in history) >= 2 and any("loss" in h for h in history)
    info = json.loads((out / "qa_run_info.json").read_text())
    assert info["train_samples"] == 42 and info["version_2_with_negative"] is True
    assert info["train_conversion"] == info["validation_conversion"] == "squad_format_file"
    assert any(p.name.startswith("checkpoint-") for p in out.iterdir())


@pytest.mark.slow
def test_predict_on_a_file_without_answers(trained_run, tmp_path):
    dev = json.loads((SAMPLE / "dev.json").read_text())
    records = [
        {"id": q["id"], "context": p["context"], "question": q["question"]}
        for article in dev["data"] for p in article["paragraphs"] for q in p["qas"]
    ]
    test_file = tmp_path / "test.jsonl"
    test_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "predict"
    run_script_main(run_qa, common(trained_run, out) + ["--test_file", test_file, "--do_predict",
                                                        "--version_2_with_negative", "true"])
    predictions = json.loads((out / "predict_predictions.json").read_text())
    assert set(predictions) == {r["id"] for r in records}
    results = json.loads((out / "all_results.json").read_text())
    assert results["predict_samples"] == 14 and "predict_f1" not in results
    # The same model on the same questions answers the same as in evaluation.
    assert predictions == json.loads((trained_run / "eval_predictions.json").read_text())


def write_test_file(tmp_path) -> Path:
    """The sample's dev questions without answers: prediction data, which cannot tell whether "no answer" is allowed."""
    dev = json.loads((SAMPLE / "dev.json").read_text())
    records = [{"id": q["id"], "context": p["context"], "question": q["question"]}
               for article in dev["data"] for p in article["paragraphs"] for q in p["qas"]]
    test_file = tmp_path / "test.jsonl"
    test_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    return test_file


@pytest.mark.slow
def test_prediction_follows_the_models_record_and_a_config_with_overrides(trained_run, tmp_path):
    """A model trained with unanswerable questions abstains on a prediction file (which has no answers to tell);
    the arguments come from a YAML config, with flags after it overriding it."""
    test_file = write_test_file(tmp_path)
    out = tmp_path / "predict"
    config = tmp_path / "predict.yaml"
    config.write_text("\n".join([f"model_name_or_path: {trained_run}", f"test_file: {test_file}", "do_predict: true",
                                 f"output_dir: {tmp_path / 'overridden'}", "report_to: none", "max_seq_length: 64",
                                 "doc_stride: 16", "max_query_length: 16", "per_device_eval_batch_size: 4"]))
    run_script_main(run_qa, [config, "--output_dir", out], tiny=False)
    assert not (tmp_path / "overridden").exists()
    predictions = json.loads((out / "predict_predictions.json").read_text())
    odds = json.loads((out / "predict_null_odds.json").read_text())
    assert set(odds) == set(predictions) and len(predictions) == 14
    assert all((text == "") == (odds[qid] > 0) for qid, text in predictions.items())
    assert predictions == json.loads((trained_run / "eval_predictions.json").read_text())

    # The same weights recorded as trained without unanswerable questions never abstain.
    model = tmp_path / "never_abstains"
    shutil.copytree(trained_run, model, ignore=shutil.ignore_patterns("checkpoint-*"))
    info = json.loads((model / "qa_run_info.json").read_text())
    (model / "qa_run_info.json").write_text(json.dumps({**info, "version_2_with_negative": False}))
    out = tmp_path / "predict_v1"
    run_script_main(run_qa, [config, "--model_name_or_path", model, "--output_dir", out], tiny=False)
    assert not (out / "predict_null_odds.json").exists()
    assert all(json.loads((out / "predict_predictions.json").read_text()).values())


def test_help_shows_what_every_run_needs_on_the_first_screen(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        run_script_main(run_qa, ["--help"], tiny=False)
    lines = capsys.readouterr().out.splitlines()
    first = lines.index("What every run needs:")
    options = [line.split()[0].rstrip(",") for line in lines[first + 1:] if line.startswith("  --")]
    group = options[:options.index("--config_name")]  # the next group's first option
    assert group == ["--model_name_or_path", "--dataset", "--train_file", "--validation_file", "--test_file",
                     "--do_train", "--do_eval", "--do_predict", "--output_dir"]
    end = next(i for i, line in enumerate(lines) if line.startswith("  --output_dir"))
    assert end < 50  # one screen, the description included
    assert "  --dataset DATASET, --dataset_name DATASET" in lines[first + 1:end]  # the example's spelling beside ours
    resume = " ".join(" ".join(lines[end:]).split())
    assert "--resume_from_checkpoint RESUME_FROM_CHECKPOINT A checkpoint folder" in resume and "`latest`" in resume


def test_help_comes_first_and_abbreviations_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_script_main(run_qa, ["--help"], tiny=False)
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[2].startswith("Fine-tune and evaluate a BERT-family encoder for extractive")
    assert "config file may come first; flags after it override" in printed
    assert printed.index("  --oversample_unanswerable") < printed.index("Trainer options") < printed.index("  --bf16 ")
    assert "--adam_beta1" not in printed and "docs/transformers/main_classes/trainer" in printed
    with pytest.raises(SystemExit) as exit_info:
        run_script_main(run_qa, ["--model_name_or_path", "m", "--max_seq", "256"], tiny=False)
    assert exit_info.value.code == 2 and "unrecognized arguments: --max_seq 256" in capsys.readouterr().err


def bad_files(tmp_path):
    good = json.loads((SAMPLE / "dev.json").read_text())
    qas = good["data"][0]["paragraphs"][0]["qas"]
    cases = {}

    def variant(name, mutate):
        data = json.loads(json.dumps(good))
        mutate(data["data"][0]["paragraphs"][0])
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        cases[name] = path

    variant("missing_field", lambda p: p["qas"][1].pop("question"))
    variant("empty_context", lambda p: p.update(context=""))
    variant("empty_question", lambda p: p["qas"][2].update(question="  "))
    variant("duplicate_id", lambda p: p["qas"][3].update(id=qas[0]["id"]))
    variant("misaligned", lambda p: p["qas"][0]["answers"][0].update(answer_start=5))
    malformed = tmp_path / "malformed.json"
    malformed.write_text(json.dumps(good)[:-40])
    cases["malformed"] = malformed
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing_field", "empty_context", "empty_question", "duplicate_id", "misaligned",
                                  "malformed"])
def test_bad_input_exits_with_one_error_and_writes_nothing(tiny_qa_model, tmp_path, monkeypatch, case, capsys):
    bad = bad_files(tmp_path)[case]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:  # through the entry point: `error: ...`, exit status 1
        run_script(run_qa.main, script_arguments(common(tiny_qa_model, out) + [
            "--train_file", SAMPLE / "train.json", "--validation_file", bad, "--do_train", "--do_eval"]))
    message = str(exit_info.value.code)
    assert message.startswith(f"error: {bad}"), message
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_give_the_same_metrics_and_predictions(tiny_qa_model, tmp_path):
    args = [*common(tiny_qa_model, "OUT"), "--validation_file", SAMPLE / "dev.json", "--do_eval",
            "--per_device_eval_batch_size", "3"]
    outputs = {}
    for procs in (1, 2):
        out = tmp_path / f"p{procs}"
        done = accelerate_launch("run_qa.py", script_arguments([out if a == "OUT" else a for a in args]), procs)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs[procs] = out
    one, two = outputs[1], outputs[2]
    for name in ("eval_predictions.json", "eval_null_odds.json", "eval_nbest_predictions.json"):
        assert json.loads((one / name).read_text()) == json.loads((two / name).read_text()), name
    r1 = json.loads((one / "eval_results.json").read_text())
    r2 = json.loads((two / "eval_results.json").read_text())
    squad_keys = [k for k in r1 if not k.endswith(("runtime", "per_second", "loss", "preparation_time"))]
    assert {k: r1[k] for k in squad_keys} == {k: r2[k] for k in squad_keys}
    assert r1["eval_loss"] == pytest.approx(r2["eval_loss"], rel=1e-5)
    assert r1["eval_windows"] % 6 != 0, "the last batch must be uneven across the two processes"


@pytest.mark.slow
def test_a_heavier_no_answer_loss_weight_makes_the_model_abstain_more(tiny_qa_model, tmp_path):
    mean_odds = {}
    for weight in (0.1, 1, 8):
        out = tmp_path / f"weight_{weight}"
        run_script_main(run_qa, common(tiny_qa_model, out) + [
            "--train_file", SAMPLE / "train.json", "--validation_file", SAMPLE / "dev.json", "--do_train", "--do_eval",
            "--max_steps", "4", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
            "--no_answer_loss_weight", weight,
            "--train_sampling_strategy", "random",  # the batches these 4 steps were calibrated on
        ])
        odds = json.loads((out / "eval_null_odds.json").read_text())
        mean_odds[weight] = sum(odds.values()) / len(odds)
        assert json.loads((out / run_qa.RUN_INFO_FILE).read_text())["data_args"]["no_answer_loss_weight"] == weight
    # The same questions, seed and steps: only the weight differs, and a heavier one raises the null odds (most of
    # these short windows have no answer, so the tiny model leans to abstaining from the start).
    assert mean_odds[0.1] + 1 < mean_odds[1] < mean_odds[8], mean_odds


@pytest.mark.slow
@pytest.mark.parametrize("weight", ["0", "-1"])
def test_no_answer_loss_weight_must_be_positive(tiny_qa_model, tmp_path, weight):
    with pytest.raises(ArgumentError, match=f"--no_answer_loss_weight must be above 0, got {float(weight)}"):
        run_script_main(run_qa, ["--model_name_or_path", tiny_qa_model, "--output_dir", tmp_path / "out",
                                 "--no_answer_loss_weight", weight], tiny=False)
    assert not (tmp_path / "out").exists()
