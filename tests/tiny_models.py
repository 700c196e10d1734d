"""Tiny random BERT models for offline tests: built in code, with a vocabulary made here."""

from __future__ import annotations

import string
from pathlib import Path

from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    BertConfig,
    BertTokenizer,
)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words that the fixtures use often, so that sequences stay short; any other lowercase
# ASCII word still tokenizes through the single-character pieces below.
COMMON_WORDS = (
    "the a an of in on to and is was were who what when where which how why did does do "
    "for by with from at as it its this that are be been has have had not no yes city river "
    "built bridge year years tower people vaccine vaccines covid flu shot shots safe kids "
    "doctor study new old first last name called north south capital museum"
).split()


def build_vocab() -> list[str]:
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return SPECIAL_TOKENS + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + COMMON_WORDS


def save_tiny_bert(directory: str | Path, task: str = "qa", num_labels: int = 3, seed: int = 0) -> Path:
    """Write a 2-layer, hidden-64 random BERT with a QA ("qa") or classification ("cls") head."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab()
    tokenizer = BertTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        num_labels=num_labels if task != "qa" else 2,
    )
    torch.manual_seed(seed)
    model_cls = AutoModelForQuestionAnswering if task == "qa" else AutoModelForSequenceClassification
    model = model_cls.from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
