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
