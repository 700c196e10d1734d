"""A straightforward, loop-by-loop QA post-processing: the reference the vectorised version must match."""

from __future__ import annotations

import numpy as np


def reference_postprocess(examples, features, start_logits, end_logits, version_2_with_negative=False,
                          n_best_size=20, max_answer_length=30, null_score_diff_threshold=0.0):
    """Returns (predictions, nbest, null_odds) with the same rules as utils_qa.postprocess_qa_predictions."""
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    windows_of = {}
    for f, example_id in enumerate(features["example_id"]):
        windows_of.setdefault(example_id, []).append(f)
    offsets_all = features["offset_mapping"]
    ctx_start_all, ctx_end_all = features["context_start"], features["context_end"]
    predictions, nbest, null_odds = {}, {}, {}
    for example in examples:
        candidates = []
        min_null = None
        for f in windows_of.get(example["id"], []):
            starts, ends = start_logits[f], end_logits[f]
            offsets = offsets_all[f]
            null = starts[0] + ends[0]
            if min_null is None or null < min_null[0]:
                min_null = (null, starts[0], ends[0])
            for s in np.argsort(-starts, kind="stable")[:n_best_size]:
                for e in np.argsort(-ends, kind="stable")[:n_best_size]:
                    inside = ctx_start_all[f] <= s <= ctx_end_all[f] and ctx_start_all[f] <= e <= ctx_end_all[f]
                    if not inside or e < s or e - s + 1 > max_answer_length:
                        continue
                    cs, ce = offsets[s][0], offsets[e][1]
                    candidates.append({"text": example["context"][cs:ce], "offsets": [cs, ce],
                                       "start_logit": float(starts[s]), "end_logit": float(ends[e]),
                                       "score": float(starts[s] + ends[e])})
        candidates = sorted(candidates, key=lambda c: c["score"], reverse=True)[:n_best_size]
        best = candidates[0] if candidates else None
        entries = list(candidates)
        if version_2_with_negative and min_null is not None:
            entries.append({"text": "", "offsets": [0, 0], "start_logit": float(min_null[1]),
                            "end_logit": float(min_null[2]), "score": float(min_null[0])})
            entries = sorted(entries, key=lambda c: c["score"], reverse=True)
        if entries:
            scores = np.array([c["score"] for c in entries])
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            for c, p in zip(entries, probs):
                c["probability"] = float(p)
        nbest[example["id"]] = entries
        if not version_2_with_negative:
            predictions[example["id"]] = best["text"] if best else ""
            continue
        odds = float(min_null[0] - best["score"]) if best else float("inf")
        null_odds[example["id"]] = odds
        predictions[example["id"]] = "" if best is None or odds > null_score_diff_threshold else best["text"]
    return predictions, nbest, null_odds
