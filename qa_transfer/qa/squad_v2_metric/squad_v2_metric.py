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


def has_answers(references: dict[str, dict]) -> dict[str, bool]:
    """Whether each question has a gold answer. As in the official script, any answer counts, even one that
    normalises to nothing (its question is then answerable, with '' its only gold answer)."""
    return {qid: bool(answers["text"]) for qid, answers in references.items()}


def raw_scores(predictions: dict[str, str], references: dict[str, dict]) -> tuple[dict[str, int], dict[str, float]]:
    """Each predicted question's exact match and F1, the best over its gold answers, in the references' order."""
    exact, f1 = {}, {}
    for qid, answers in references.items():
        if qid in predictions:
            golds = gold_texts(answers)
            exact[qid] = max(exact_score(gold, predictions[qid]) for gold in golds)
            f1[qid] = max(f1_score(gold, predictions[qid]) for gold in golds)
    return exact, f1


def apply_no_answer_threshold(raw: dict[str, float], na_scores: dict[str, float], has_answer: dict[str, bool],
                              threshold: float) -> dict[str, float]:
    """A question whose no-answer score exceeds `threshold` counts as abstained on: right when it has no answer."""
    return {qid: float(not has_answer[qid]) if na_scores[qid] > threshold else score for qid, score in raw.items()}


def best_threshold(
    raw: dict[str, float], na_scores: dict[str, float], has_answer: dict[str, bool], predictions: dict[str, str],
    total: int | None = None, start_threshold: float | None = None,
) -> tuple[float, float]:
    """Sweep the no-answer threshold over the sorted no-answer scores and return (best score %, threshold).

    Start from "abstain on everything" (worth one point per unanswerable question); raising the threshold past
    a question's score makes us answer it: +its score if it has an answer, -1 if we answer an unanswerable one
    with a non-empty string. Questions come in the order of their sorted scores, equal ones in `na_scores`' order,
    as in the official script. The start threshold is `start_threshold` (the official script's is 0.0), by default
    just below the lowest no-answer score, so that applying the returned threshold reproduces the best score.
    `total` (default: the scored questions) is the denominator: questions left out of `raw` count as wrong.
    """
    current = best = sum(1 for qid in raw if not has_answer[qid])
    ordered = [qid for qid in sorted(na_scores, key=na_scores.__getitem__) if qid in raw]
    if start_threshold is not None:
        best_thresh = start_threshold
    else:
        best_thresh = math.nextafter(na_scores[ordered[0]], -math.inf) if ordered else 0.0
    for qid in ordered:
        if has_answer[qid]:
            current += raw[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_scores[qid]
    return 100.0 * best / (len(raw) if total is None else total), best_thresh


def squad_v2_scores(
    predictions: dict[str, str],
    references: dict[str, dict],
    na_scores: dict[str, float] | None = None,
    no_answer_threshold: float = 1.0,
    official: bool = False,
) -> dict[str, float]:
    """Evaluate {id: text} predictions against {id: answers}; every reference id must have a prediction.

    official=True gives what the official evaluate-v2.0.py prints with `na_scores` as its --na-prob-file: best_*
    whenever na_scores is given (also on data without unanswerable questions), a best threshold of 0.0 when
    abstaining on everything is best; a question without a prediction scores 0 (the official script's
    question-level scores leave it out)."""
    missing = [qid for qid in references if qid not in predictions]
    if missing and not official:
        raise ValueError(f"{len(missing)} references have no prediction, e.g. id {missing[0]!r}")
    # A question without a no-answer score has 0.0, as every question has when no scores are given.
    scored_na = dict(na_scores or {})
    for qid in references:
        scored_na.setdefault(qid, 0.0)
    has_answer = has_answers(references)
    exact_raw, f1_raw = raw_scores(predictions, references)
    exact = apply_no_answer_threshold(exact_raw, scored_na, has_answer, no_answer_threshold)
    f1 = apply_no_answer_threshold(f1_raw, scored_na, has_answer, no_answer_threshold)

    def averages(qids: list[str], prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}exact": 100.0 * sum(exact.get(q, 0) for q in qids) / len(qids),
            f"{prefix}f1": 100.0 * sum(f1.get(q, 0) for q in qids) / len(qids),
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
    if (na_scores is not None) if official else unanswerable:
        start = 0.0 if official else None
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            result[f"best_{name}"], result[f"best_{name}_thresh"] = best_threshold(
                raw, scored_na, has_answer, predictions, len(qids), start)
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
