"""core.arguments and core.scripts: config files with overriding flags, refused abbreviations, the pin_memory default,
argument checks as ArgumentErrors, NAME=VALUE pairs, and the entry point's exits."""

from dataclasses import dataclass, field

import pytest
from transformers import TrainingArguments

from qa_transfer.core import arguments, scripts
from qa_transfer.core.arguments import ScriptArgumentParser, parse_args_with_config
from qa_transfer.core.errors import (
    ArgumentError,
    OutputDirError,
    PackagedModelError,
    ProbeError,
    QADataError,
    ResultsWriteError,
    UsageError,
)


@dataclass
class ToyArguments:
    """A toy script's own options."""

    name: str = field(metadata={"help": "Required."})
    sizes: list[int] = field(default_factory=lambda: [1], metadata={"help": "One or more sizes."})
    mode: str = field(default="fast", metadata={"help": "How.", "choices": ["fast", "slow"]})

    def __post_init__(self):
        if self.name == "forbidden":
            raise ValueError("--name may not be 'forbidden'")


def parser() -> ScriptArgumentParser:
    return ScriptArgumentParser((ToyArguments, TrainingArguments), description="A toy script.")


@pytest.mark.parametrize("accelerator", [False, True])
def test_pin_memory_is_off_without_an_accelerator_unless_given(monkeypatch, accelerator):
    monkeypatch.setattr(arguments, "has_accelerator", lambda: accelerator)
    _, args = parse_args_with_config(parser(), ["--name", "x"])
    assert args.dataloader_pin_memory is accelerator
    _, args = parse_args_with_config(parser(), ["--name", "x", "--dataloader_pin_memory", "true"])
    assert args.dataloader_pin_memory is True


def test_yaml_config_then_flags(tmp_path):
    config = tmp_path / "toy.yml"
    config.write_text("name: from_config\nsizes: 4\nlearning_rate: 1e-4\nmode: slow\n")
    toy, args = parse_args_with_config(parser(), [str(config), "--sizes", "5", "6"])
    assert (toy.name, toy.sizes, toy.mode, args.learning_rate) == ("from_config", [5, 6], "slow", 1e-4)
    toy, _ = parse_args_with_config(parser(), [str(config)])
    assert toy.sizes == [4], "a single value of a list option is a list of one"


def test_a_derived_default_follows_the_other_options_unless_given(tmp_path):
    derived = {"output_dir": lambda options: f"{options.name}/out"}
    assert parse_args_with_config(parser(), ["--name", "x"], derived_defaults=derived)[1].output_dir == "x/out"
    _, args = parse_args_with_config(parser(), ["--name", "x", "--output_dir", "o"], derived_defaults=derived)
    assert args.output_dir == "o"
    config = tmp_path / "toy.yml"
    config.write_text("name: from_config\n")
    _, args = parse_args_with_config(parser(), [str(config)], derived_defaults=derived)
    assert args.output_dir == "from_config/out"
    config.write_text("name: from_config\noutput_dir: configured\n")
    assert parse_args_with_config(parser(), [str(config)], derived_defaults=derived)[1].output_dir == "configured"


@pytest.mark.parametrize("text, message", [
    ("name: x\nmode: medium\n", "mode must be one of fast, slow, not 'medium'"),
    ("name: x\nlearning_rat: 1\n", "unknown option\\(s\\) learning_rat"),
    ("- name\n", "one mapping of option names to values"),
    ("name: [x\n", "cannot read the config file"),
])
def test_a_bad_config_names_the_file(tmp_path, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ValueError, match=f"{config}: .*{message}"):
        parse_args_with_config(parser(), [str(config)])


def test_abbreviations_and_unknown_flags_are_refused(capsys):
    for argv in (["--name", "x", "--learning_r", "1"], ["--name", "x", "--no_such_flag"]):
        with pytest.raises(SystemExit) as exit_info:
            parse_args_with_config(parser(), argv)
        assert exit_info.value.code == 2
        assert f"unrecognized arguments: {' '.join(argv[2:])}" in capsys.readouterr().err


def test_a_failed_argument_check_is_an_argument_error():
    with pytest.raises(ArgumentError, match="^--name may not be 'forbidden'$"):
        parse_args_with_config(parser(), ["--name", "forbidden"])


def test_name_value_pairs():
    assert scripts.parse_name_value_pairs(["a=1", "b=x=y"], "--flag") == {"a": "1", "b": "x=y"}
    for bad in ("a", "=1", "a="):
        with pytest.raises(ArgumentError, match=f"^--flag takes NAME=VALUE pairs, got {bad!r}$"):
            scripts.parse_name_value_pairs([bad], "--flag")


@pytest.mark.parametrize("error_class, other_base", [
    (QADataError, ValueError), (OutputDirError, ValueError), (PackagedModelError, RuntimeError),
    (ResultsWriteError, OSError), (ProbeError, ValueError), (ArgumentError, ValueError),
])
def test_every_user_error_is_a_usage_error_and_keeps_its_other_base(error_class, other_base):
    assert issubclass(error_class, UsageError) and issubclass(error_class, other_base)


def test_run_script_exits_with_the_status_or_one_error_line():
    def main(argv):
        if argv == ["bad"]:
            raise QADataError("data.json: record 3: empty question")
        if argv == ["bug"]:
            raise KeyError("a bug keeps its traceback")
        return 1 if argv == ["failed"] else None

    for argv, code in ((["fine"], 0), (["failed"], 1), (["bad"], "error: data.json: record 3: empty question")):
        with pytest.raises(SystemExit) as exit_info:
            scripts.run_script(main, argv)
        assert exit_info.value.code == code
    with pytest.raises(KeyError):
        scripts.run_script(main, ["bug"])


def test_the_arguments_line_names_training_settings_only_when_training(tmp_path, caplog):
    for do_train in (False, True):
        out = tmp_path / str(do_train)
        arguments = TrainingArguments(output_dir=str(out), do_train=do_train, do_eval=True, report_to="none",
                                      per_device_eval_batch_size=4)
        caplog.clear()
        with caplog.at_level("INFO", logger="qa_transfer"):
            scripts.save_run_arguments(arguments)
        assert (out / scripts.RUN_ARGUMENTS_FILE).is_file()
        line = next(message for message in caplog.messages if message.startswith("arguments: "))
        if do_train:
            assert "(learning rate 5e-05, 3 epochs, batch 8 per device, seed 42)" in line
        else:
            assert line.endswith("(evaluation batch 4 per device)") and "learning rate" not in line
