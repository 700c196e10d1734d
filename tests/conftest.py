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


# A test that uses one of these fixtures runs a tiny model: it must be marked slow.
MODEL_FIXTURES = {"tiny_qa_model", "tiny_cls_model"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The markers (pyproject.toml) are set by the tests themselves, so that the fast part runs alone (`-m "not
    slow and not distributed and not faults"`); CI runs everything. slow: each test that trains or evaluates a
    model end to end; distributed: each test that starts accelerate; faults: tests/test_faults.py. Collection
    fails when a test that uses a tiny model (MODEL_FIXTURES, directly or through another fixture) is not marked
    slow."""
    unmarked = []
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None:
            unmarked.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError("these tests run a tiny model but are not marked @pytest.mark.slow: "
                                + ", ".join(unmarked))
