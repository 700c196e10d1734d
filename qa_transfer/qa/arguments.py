"""The QA windowing and answer flags that run_qa.py, cross_eval.py and the QA reader share (`QAEvalArguments`), and
what they become for one tokenizer: the windows (`WindowConfig`) and the post-processing (`PostprocessConfig`).

Only the standard library at import time, so that fine_tune_all.py can read the flags' names without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class WindowConfig:
    """How a (question, context) pair is cut into model inputs."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    pad_to_max_length: bool = False


@dataclass
class PostprocessConfig:
    """How window logits become answers (utils_qa.postprocess_qa_predictions' settings)."""

    version_2_with_negative: bool = False
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0


def check_qa_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """A ValueError unless the tokenizer can window QA examples: a fast tokenizer (answers map back to text
    through its character offsets) that pads on the right. Windows are question first, context second, and the
    unanswerable target is the first token ([CLS] or <s>); left padding would move both under dynamic padding."""
    if not tokenizer.is_fast:
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; QA needs one (answers map back to text through "
            "its character offsets)"
        )
    if tokenizer.padding_side != "right":
        raise ValueError(
            f"the tokenizer pads on the {tokenizer.padding_side}; QA windows need right padding: set "
            '"padding_side": "right" in the model\'s tokenizer_config.json'
        )


@dataclass
class QAEvalArguments:
    """How questions are windowed, sampled and turned into answers: the arguments that run_qa.py and
    cross_eval.py share, so that a cross-evaluation cell is computed exactly as `run_qa.py --do_eval` would."""

    # What an option means here that the transformers example's option of that name does not (logged when set).
    EXAMPLE_DIFFERENCES: ClassVar[dict[str, str]] = {
        "max_eval_samples": "--max_eval_samples counts questions, drawn as --subset_strategy says; the transformers "
                            "example keeps the first N questions, then the first N windows",
    }

    max_seq_length: int = field(default=384, metadata={"help": "Tokens per window (question + context)."})
    doc_stride: int = field(default=128, metadata={"help": "Tokens of overlap between consecutive windows."})
    max_query_length: int = field(default=64, metadata={"help": "Questions are cut to this many tokens."})
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every window to max_seq_length (default: pad each batch to its longest)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on at most this many questions."})
    subset_strategy: str = field(
        default="random",
        metadata={"help": "How --max_*_samples/--train_fraction pick questions: 'random' (seeded by --seed) or "
                          "'first'."},
    )
    version_2_with_negative: bool | None = field(
        default=None,
        # nargs/const: a bare --version_2_with_negative means true, as in the transformers example
        metadata={"help": "Allow 'no answer': true (also the bare flag) or false (default: whether the data has "
                          "unanswerable questions, or the fine-tuned model's qa_run_info.json says it was trained "
                          "with them).", "nargs": "?", "const": True},
    )
    null_score_diff_threshold: float = field(
        default=0.0, metadata={"help": "Answer '' when null score - best span score exceeds this (see best_f1_thresh)."}
    )
    n_best_size: int = field(default=20, metadata={"help": "Start/end candidates per window, and answers kept."})
    max_answer_length: int = field(default=30, metadata={"help": "Longest answer, in tokens."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for windowing."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Recompute cached windows."})

    def __post_init__(self):
        if self.subset_strategy not in ("random", "first"):
            raise ValueError(f"--subset_strategy must be 'random' or 'first', not {self.subset_strategy!r}")
        if self.doc_stride >= self.max_seq_length - self.max_query_length - 3:
            raise ValueError("--doc_stride must leave room for new context in each window: lower it or raise "
                             "--max_seq_length")

    def window_config(self, tokenizer: PreTrainedTokenizerBase) -> WindowConfig:
        """The windowing for this tokenizer; a ValueError for a tokenizer that cannot window QA examples
        (`check_qa_tokenizer`), or when --doc_stride leaves it no new context per window (the special tokens of a
        question/context pair differ: 3 for BERT, 4 for RoBERTa and MPNet)."""
        check_qa_tokenizer(tokenizer)
        max_seq_length = min(self.max_seq_length, tokenizer.model_max_length)
        context_room = max_seq_length - self.max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
        if self.doc_stride >= context_room:
            raise ValueError(
                f"--doc_stride {self.doc_stride} must be below {context_room} for this tokenizer ({max_seq_length} "
                f"tokens per window - {self.max_query_length} of question - "
                f"{tokenizer.num_special_tokens_to_add(pair=True)} special): lower it or raise --max_seq_length"
            )
        return WindowConfig(max_seq_length, self.doc_stride, self.max_query_length, self.pad_to_max_length)

    def postprocess_config(self, version_2_with_negative: bool) -> PostprocessConfig:
        return PostprocessConfig(
            version_2_with_negative, self.n_best_size, self.max_answer_length, self.null_score_diff_threshold
        )
