"""Tiny random models for offline tests: built in code, with a vocabulary made here.

`save_tiny_bert` writes a BERT with a hand-made WordPiece vocabulary; `save_tiny_model` writes one of the other
encoder families, with a tokenizer trained here by the `tokenizers` library on the repository's own samples:
- RoBERTa: byte-level BPE, `<s> q </s></s> c </s>`, no token_type_ids, pad id 1;
- MPNet: WordPiece, `<s> q </s></s> c </s>`, no token_type_ids, pad id 1;
- DeBERTa-v2 (as deberta-v3): sentencepiece-style Unigram, `[CLS] q [SEP] c [SEP]`, whose tokens carry the
  space before a word (so their character offsets include it).
"""

from __future__ import annotations

import csv
import json
import string
from pathlib import Path

from shared import REPO
from tokenizers import ByteLevelBPETokenizer, SentencePieceUnigramTokenizer
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    BertConfig,
    BertTokenizer,
    DebertaV2Config,
    DebertaV2Tokenizer,
    MPNetConfig,
    MPNetTokenizer,
    RobertaConfig,
    RobertaTokenizer,
)

FAMILIES = ("bert", "roberta", "mpnet", "deberta-v2")
# Small enough for fast tests, big enough to run every code path: 2 layers, hidden 64.
TINY_SIZES = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
MODEL_MAX_LENGTH = 512

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words that the fixtures use often, so that sequences stay short; any other lowercase
# ASCII word still tokenizes through the single-character pieces below.
COMMON_WORDS = ["the", "a", "an", "of", "in", "on", "to", "and", "is", "was", "were", "who", "what", "when", "where",
                "which", "how", "why", "did", "does", "do", "for", "by", "with", "from", "at", "as", "it", "its",
                "this", "that", "are", "be", "been", "has", "have", "had", "not", "no", "yes", "city", "river", "built",
                "bridge", "year", "years", "tower", "people", "vaccine", "vaccines", "covid", "flu", "shot", "shots",
                "safe", "kids", "doctor", "study", "new", "old", "first", "last", "name", "called", "north", "south",
                "capital", "museum"]


def build_vocab() -> list[str]:
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return SPECIAL_TOKENS + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + COMMON_WORDS


def save_tiny_bert(directory: str | Path, task: str = "qa", num_labels: int = 3, seed: int = 0) -> Path:
    """Write a 2-layer, hidden-64 random BERT with a QA ("qa") or classification ("cls") head."""
    return save_tiny_model(directory, "bert", task, num_labels, seed)


def tokenizer_corpus() -> list[str]:
    """The texts the tiny tokenizers are trained on: the QA samples, the tweet fixtures and the common words."""
    texts = [" ".join(COMMON_WORDS), string.ascii_letters + string.digits + string.punctuation]
    for path in sorted((REPO / "examples").glob("*_sample/*.json*")):
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()] if path.suffix == ".jsonl" else None
        if records is None:
            records = [
                {"context": paragraph["context"], "question": qa["question"]}
                for article in json.loads("\n".join(lines))["data"]
                for paragraph in article["paragraphs"]
                for qa in paragraph["qas"]
            ]
        texts += [record[key] for record in records for key in ("context", "question") if key in record]
    with open(REPO / "tests" / "fixtures" / "classification" / "train.csv", newline="", encoding="utf-8") as f:
        texts += [row["tweet"] for row in csv.DictReader(f)]
    return texts


def build_tokenizer(family: str):
    """A fast tokenizer of the family's real class, its vocabulary trained here on `tokenizer_corpus`."""
    if family == "bert":
        return BertTokenizer(vocab={tok: i for i, tok in enumerate(build_vocab())}, do_lower_case=True)
    if family == "mpnet":
        # The MPNet special tokens come first, as in the real vocabulary: <s> 0, <pad> 1, </s> 2.
        vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"] + build_vocab()[len(SPECIAL_TOKENS):]
        return MPNetTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, model_max_length=MODEL_MAX_LENGTH)
    if family == "roberta":
        trainer = ByteLevelBPETokenizer()
        trainer.train_from_iterator(
            tokenizer_corpus(), vocab_size=600, min_frequency=2, show_progress=False,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        )
        model = json.loads(trainer._tokenizer.to_str())["model"]
        merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in model["merges"]]
        return RobertaTokenizer(vocab=model["vocab"], merges=merges, model_max_length=MODEL_MAX_LENGTH)
    if family == "deberta-v2":
        trainer = SentencePieceUnigramTokenizer()
        trainer.train_from_iterator(
            tokenizer_corpus(), vocab_size=400, show_progress=False, unk_token="[UNK]",
            special_tokens=["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"],
        )
        model = json.loads(trainer._tokenizer.to_str())["model"]
        vocab = [(piece, score) for piece, score in model["vocab"]]
        return DebertaV2Tokenizer(vocab=vocab, unk_id=model["unk_id"], model_max_length=MODEL_MAX_LENGTH)
    raise ValueError(f"unknown family {family!r}: one of {', '.join(FAMILIES)}")


def build_config(family: str, tokenizer, num_labels: int):
    if family == "bert":  # as the tests have always had it: the vocabulary list's length, BERT's default ids
        return BertConfig(vocab_size=len(build_vocab()), max_position_embeddings=MODEL_MAX_LENGTH,
                          num_labels=num_labels, **TINY_SIZES)
    special_ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    common = {"vocab_size": len(tokenizer), "num_labels": num_labels, **TINY_SIZES, **special_ids}
    if family == "roberta":
        # RoBERTa counts positions from pad id + 1, hence the 2 extra; one token type only.
        return RobertaConfig(max_position_embeddings=MODEL_MAX_LENGTH + 2, type_vocab_size=1, **common)
    if family == "mpnet":
        return MPNetConfig(max_position_embeddings=MODEL_MAX_LENGTH + 2, **common)
    # deberta-v3 style: relative attention, no absolute positions, no token types.
    return DebertaV2Config(
        max_position_embeddings=MODEL_MAX_LENGTH, relative_attention=True, position_buckets=32,
        pos_att_type=["p2c", "c2p"], position_biased_input=False, type_vocab_size=0, max_relative_positions=-1,
        **common,
    )


def save_tiny_model(
    directory: str | Path, family: str, task: str = "qa", num_labels: int = 3, seed: int = 0
) -> Path:
    """Write a 2-layer, hidden-64 random model of `family` with a QA ("qa") or classification ("cls") head."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    config = build_config(family, tokenizer, num_labels if task != "qa" else 2)
    torch.manual_seed(seed)
    model_cls = AutoModelForQuestionAnswering if task == "qa" else AutoModelForSequenceClassification
    model_cls.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
