"""The official SQuAD 2.0 evaluation as a local `evaluate` module, so it loads offline:

    metric = evaluate.load("path/to/squad_v2_metric")
    metric.compute(predictions=[{"id", "prediction_text", "no_answer_probability"}],
                   references=[{"id", "answers": {"text": [...], "answer_start": [...]}}])

Output keys match the hub's `squad_v2` metric: exact, f1, total, HasAns_exact, HasAns_f1, HasAns_total,
NoAns_exact, NoAns_f1, NoAns_total, best_exact, best_exact_thresh, best_f1, best_f1_thresh. When no reference
is unanswerable (SQuAD 1.1-style data) the NoAns_* and best_* keys are left out: there is no abstention to
score or tune.

`no_answer_probability` may be any no-answer score where larger means "more likely unanswerable" (run_qa.py
passes the null-score difference); `best_*_thresh` are in the same units. With the default
`no_answer_threshold=1.0` (as on the hub), a prediction whose score exceeds 1.0 counts as "no answer"; pass
`no_answer_threshold=float("inf")` to score the prediction texts exactly as given.
"""

from __future__ import annotations

import collections
import math
import re
import string

import datasets
import evaluate

_CITATION = """\
@inproceedings{rajpurkar-etal-2018-know,
    title = "Know What You Don{'}t Know: Unanswerable Questions for {SQ}u{AD}",
    author = "Rajpurkar, Pranav and Jia, Robin and Liang, Percy",
    booktitle = "Proceedings of ACL 2018",
    year = "2018",
}
"""

_DESCRIPTION = "SQuAD 2.0 exact match and F1, with HasAns/NoAns breakdown and best no-answer thresholds."

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of {"id": str, "prediction_text": str, "no_answer_probability": float}
    references: list of {"id": str, "answers": {"text": list[str], "answer_start": list[int]}}
    no_answer_threshold: a prediction whose no_answer_probability is above this counts as "no answer".
Returns:
    exact, f1, total, HasAns_*, NoAns_* (when the data has unanswerable questions), best_exact,
    best_exact_thresh, best_f1, best_f1_thresh (likewise).
"""

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and English articles, collapse whitespace (the official rules)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_score(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold: str, prediction: str) -> float:
    gold_tokens, pred_tokens = answer_tokens(gold), answer_tokens(prediction)
    if not gold_tokens or not pred_tokens:
        # An empty side scores 1 only against another empty side ("no answer" matched).
        return float(gold_tokens == pred_tokens)
    overlap = sum((collections.Counter(gold_tokens) & collections.Counter(pred_tokens)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_texts(answers: dict) -> list[str]:
    """Gold answers that survive normalisation; an unanswerable question's only gold answer is ''."""
    texts = [text for text in answers["text"] if normalize_answer(text)]
    return texts or [""]


def best_threshold(
    raw_scores: dict[str, float], na_scores: dict[str, float], has_answer: dict[str, bool], predictions: dict[str, str]
) -> tuple[float, float]:
    """Sweep the no-answer threshold over the sorted no-answer scores and return (best score %, threshold).

    Start from "abstain on everything" (worth one point per unanswerable question); raising the threshold past
    a question's score makes us answer it: +its score if it has an answer, -1 if we answer an unanswerable one
    with a non-empty string. The start threshold lies just below the lowest no-answer score, so that applying
    the returned threshold reproduces the best score.
    """
    current = best = sum(1 for qid in raw_scores if not has_answer[qid])
    ordered = sorted(raw_scores, key=lambda qid: na_scores[qid])
    best_thresh = math.nextafter(na_scores[ordered[0]], -math.inf) if ordered else 0.0
    for qid in ordered:
        if has_answer[qid]:
            current += raw_scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_scores[qid]
    return 100.0 * best / len(raw_scores), best_thresh


def squad_v2_scores(
    predictions: dict[str, str],
    references: dict[str, dict],
    na_scores: dict[str, float] | None = None,
    no_answer_threshold: float = 1.0,
) -> dict[str, float]:
    """Evaluate {id: text} predictions against {id: answers}; every reference id must have a prediction."""
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} references have no prediction, e.g. id {missing[0]!r}")
    na_scores = na_scores if na_scores is not None else dict.fromkeys(references, 0.0)
    has_answer = {qid: gold_texts(answers) != [""] for qid, answers in references.items()}
    exact_raw, f1_raw = {}, {}
    for qid, answers in references.items():
        golds = gold_texts(answers)
        exact_raw[qid] = max(exact_score(gold, predictions[qid]) for gold in golds)
        f1_raw[qid] = max(f1_score(gold, predictions[qid]) for gold in golds)

    def thresholded(raw: dict[str, float]) -> dict[str, float]:
        return {
            qid: float(not has_answer[qid]) if na_scores[qid] > no_answer_threshold else score
            for qid, score in raw.items()
        }

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)

    def averages(qids: list[str], prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
            f"{prefix}f1": 100.0 * sum(f1[q] for q in qids) / len(qids),
            f"{prefix}total": len(qids),
        }

    qids = list(references)
    answerable = [qid for qid in qids if has_answer[qid]]
    unanswerable = [qid for qid in qids if not has_answer[qid]]
    result = averages(qids)
    if answerable:
        result.update(averages(answerable, "HasAns_"))
    if unanswerable:
        result.update(averages(unanswerable, "NoAns_"))
        result["best_exact"], result["best_exact_thresh"] = best_threshold(exact_raw, na_scores, has_answer, predictions)
        result["best_f1"], result["best_f1_thresh"] = best_threshold(f1_raw, na_scores, has_answer, predictions)
    return result


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SquadV2Metric(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": {
                        "id": datasets.Value("string"),
                        "prediction_text": datasets.Value("string"),
                        "no_answer_probability": datasets.Value("float64"),
                    },
                    "references": {
                        "id": datasets.Value("string"),
                        "answers": datasets.Sequence(
                            {"text": datasets.Value("string"), "answer_start": datasets.Value("int32")}
                        ),
                    },
                }
            ),
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def _compute(self, predictions, references, no_answer_threshold: float = 1.0):
        return squad_v2_scores(
            predictions={p["id"]: p["prediction_text"] for p in predictions},
            references={r["id"]: r["answers"] for r in references},
            na_scores={p["id"]: p["no_answer_probability"] for p in predictions},
            no_answer_threshold=no_answer_threshold,
        )
