import inspect
import os
from pathlib import Path

# Everything in the tests runs offline: no hub, no telemetry.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
from tiny_models import save_tiny_bert


@pytest.fixture(scope="session")
def tiny_qa_model(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_qa"), task="qa")


@pytest.fixture(scope="session")
def tiny_cls_model(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_cls"), task="cls", num_labels=3)


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    """A conversion cache folder of the test's own (not created yet)."""
    return str(tmp_path / "cache")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers (pyproject.toml), so that the fast part runs alone (`-m "not slow and not distributed and not
    faults"`); CI runs everything. faults: test_faults.py; distributed: a test that starts accelerate; slow: a test
    that loads one of the tiny models (they train or evaluate end to end)."""
    for item in items:
        source = inspect.getsource(item.function) if hasattr(item, "function") else ""
        if item.path.name == "test_faults.py":
            item.add_marker(pytest.mark.faults)
        if "accelerate_launch" in source:
            item.add_marker(pytest.mark.distributed)
        if {"tiny_qa_model", "tiny_cls_model"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
