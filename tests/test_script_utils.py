"""script_utils: config files with overriding flags, refused abbreviations, and the pin_memory default."""

from dataclasses import dataclass, field

import pytest
from transformers import TrainingArguments

import script_utils
from script_utils import ScriptArgumentParser, parse_args_with_config


@dataclass
class ToyArguments:
    """A toy script's own options."""

    name: str = field(metadata={"help": "Required."})
    sizes: list[int] = field(default_factory=lambda: [1], metadata={"help": "One or more sizes."})
    mode: str = field(default="fast", metadata={"help": "How.", "choices": ["fast", "slow"]})


def parser() -> ScriptArgumentParser:
    return ScriptArgumentParser((ToyArguments, TrainingArguments), description="A toy script.")


@pytest.mark.parametrize("accelerator", [False, True])
def test_pin_memory_is_off_without_an_accelerator_unless_given(monkeypatch, accelerator):
    monkeypatch.setattr(script_utils, "has_accelerator", lambda: accelerator)
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
