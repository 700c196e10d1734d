"""Window features and post-processing, checked against hand-built cases and the plain reference loop
(qa_transfer/qa/reference_postprocess.py)."""


import numpy as np
import pytest
import torch
from shared import examples_of, qa_record, windows_of
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from qa_transfer.qa.reference_postprocess import compare_outputs, plain_loop_postprocess
from qa_transfer.qa.training import span_loss
from qa_transfer.qa.windows import WindowConfig, build_windows
from utils_qa import postprocess_qa_predictions, top_k_indices

LONG_CONTEXT = (
    "the old tower stands on the north bank of the river . " * 6
    + "the museum was built in 1887 by the city . "
    + "people walk on the bridge every day . " * 6
)


@pytest.fixture(scope="module")
def tokenizer(tiny_qa_model):
    return AutoTokenizer.from_pretrained(tiny_qa_model)


def span_text(features, i, context):
    s, e = features["start_positions"][i], features["end_positions"][i]
    offsets = features["offset_mapping"][i]
    return context[offsets[s][0] : offsets[e][1]]


@pytest.mark.slow
def test_answer_in_a_later_window_is_labelled_there_and_cls_elsewhere(tokenizer):
    config = WindowConfig(max_seq_length=48, doc_stride=16, max_query_length=16)
    feats = windows_of(tokenizer, [qa_record("q", "when was the museum built ?", LONG_CONTEXT, "1887")], config)
    n = len(feats["input_ids"])
    assert n >= 4, "the context must span several windows"
    labelled = [i for i in range(n) if feats["start_positions"][i] != 0]
    assert labelled and labelled[0] > 0, "the answer only appears in a later window"
    for i in labelled:
        assert span_text(feats, i, LONG_CONTEXT) == "1887"
    for i in set(range(n)) - set(labelled):
        assert feats["start_positions"][i] == feats["end_positions"][i] == 0
    assert all(e == "q" for e in feats["example_id"])


@pytest.mark.slow
def test_answer_cut_by_a_window_edge_targets_cls(tokenizer):
    # With these sizes one window holds the whole answer and two hold only part of it.
    config = WindowConfig(max_seq_length=32, doc_stride=6, max_query_length=16)
    answer = "the museum was built in 1887 by the city"
    feats = windows_of(tokenizer, [qa_record("q", "what happened ?", LONG_CONTEXT, answer)], config)
    offsets, ctx_s, ctx_e = feats["offset_mapping"], feats["context_start"], feats["context_end"]
    start_char = LONG_CONTEXT.index(answer)
    end_char = start_char + len(answer)
    cut = whole = 0
    for i in range(len(feats["input_ids"])):
        window_lo, window_hi = offsets[i][ctx_s[i]][0], offsets[i][ctx_e[i]][1]
        contains = window_lo <= start_char and window_hi >= end_char
        overlaps = window_lo < end_char and window_hi > start_char
        if contains:
            whole += 1
            assert span_text(feats, i, LONG_CONTEXT) == answer
        else:
            assert feats["start_positions"][i] == feats["end_positions"][i] == 0
            cut += overlaps
    assert whole == 1 and cut == 2


@pytest.mark.slow
def test_unanswerable_question_targets_cls_in_every_window(tokenizer):
    config = WindowConfig(max_seq_length=48, doc_stride=16, max_query_length=16)
    feats = windows_of(tokenizer, [qa_record("q", "who painted the bridge ?", LONG_CONTEXT)], config)
    assert len(feats["input_ids"]) > 1
    assert set(feats["start_positions"]) == {0} and set(feats["end_positions"]) == {0}


@pytest.mark.slow
def test_long_question_is_cut_so_the_context_still_fits(tokenizer):
    config = WindowConfig(max_seq_length=32, doc_stride=8, max_query_length=8)
    long_question = "what " * 50 + "?"
    feats = windows_of(tokenizer, [qa_record("q", long_question, "the tower is old .", "old")], config)
    assert len(feats["input_ids"]) == 1
    assert span_text(feats, 0, "the tower is old .") == "old"


def hand_logits(feats, picks, seq_len):
    """Logits of -5 everywhere, +`value` at the chosen (window, start, end) positions."""
    n = len(feats["input_ids"])
    start = np.full((n, seq_len), -5.0)
    end = np.full((n, seq_len), -5.0)
    for window, s, e, value in picks:
        start[window, s] += value
        end[window, e] += value
    return start, end


@pytest.mark.slow
def test_postprocess_on_hand_built_logits(tokenizer):
    config = WindowConfig(max_seq_length=64, doc_stride=16, max_query_length=16)
    context = "the tower is old . the bridge is new ."
    records = [qa_record("a", "what is old ?", context, "the tower"), qa_record("b", "what is blue ?", context)]
    examples = examples_of(records)
    features = build_windows(examples, tokenizer, config, with_labels=True, with_postprocess_columns=True)
    seq_len = max(len(ids) for ids in features["input_ids"])
    offsets = features["offset_mapping"]
    cs = features["context_start"]
    # Example a (window 0): best span = tokens "tower is" (+4 each), CLS = +1 each -> odds 2 - 8 - (-10)...
    tower = next(i for i in range(cs[0], len(offsets[0])) if context[offsets[0][i][0]:offsets[0][i][1]] == "tower")
    bridge = next(i for i in range(cs[1], len(offsets[1])) if context[offsets[1][i][0]:offsets[1][i][1]] == "bridge")
    start, end = hand_logits(
        features, [(0, tower, tower + 1, 4.0), (0, 0, 0, 1.0), (1, 0, 0, 6.0), (1, bridge, bridge, 3.0)], seq_len
    )
    # A high-scoring "span" in the question part (token 1) must be ignored: it is not in the context.
    start[1, 1] = end[1, 1] = 9.0
    out = postprocess_qa_predictions(examples, features, start, end, version_2_with_negative=True, n_best_size=5,
                                     max_answer_length=10)
    assert out.predictions["a"] == "tower is"
    # null score of a = (-5 + 1) * 2 = -8; best span = (-5 + 4) * 2 = -2 -> odds -6
    assert out.null_odds["a"] == pytest.approx(-6.0)
    assert out.predictions["b"] == ""  # null 2 beats "bridge" at -4
    assert out.null_odds["b"] == pytest.approx(2.0 - (-4.0))
    assert out.nbest["a"][0]["text"] == "tower is"
    assert sum(e["probability"] for e in out.nbest["a"]) == pytest.approx(1.0)
    assert any(e["text"] == "" for e in out.nbest["b"])
    # A raised threshold answers b anyway; the max answer length rules out the 2-token span.
    out = postprocess_qa_predictions(examples, features, start, end, version_2_with_negative=True, n_best_size=5,
                                     max_answer_length=1, null_score_diff_threshold=100.0)
    assert out.predictions["b"] == "bridge"
    assert out.predictions["a"] == "" and out.null_odds["a"] == float("inf")  # no 1-token span among the top 5
    # SQuAD 1.1 mode never abstains and records no null odds.
    out = postprocess_qa_predictions(examples, features, start, end, version_2_with_negative=False, n_best_size=5)
    assert out.predictions["b"] != "" and out.null_odds == {}


@pytest.mark.slow
@pytest.mark.parametrize("version_2", [True, False])
@pytest.mark.parametrize("pad", [True, False])
def test_vectorised_postprocess_matches_reference_loop(tokenizer, version_2, pad):
    rng = np.random.default_rng(0)
    words = ["the", "old", "tower", "stands", "on", "north", "bank", "of", "river", "museum", "was", "built", "in",
             "1887", "by", "city", "people", "walk"]
    records = []
    for i in range(25):
        context = " ".join(rng.choice(words, size=int(rng.integers(5, 90))))
        records.append(qa_record(f"q{i}", " ".join(rng.choice(words, size=5)) + " ?", context))
    examples = examples_of(records)
    config = WindowConfig(max_seq_length=40, doc_stride=10, max_query_length=10, pad_to_max_length=pad)
    features = build_windows(examples, tokenizer, config, with_labels=False, with_postprocess_columns=True)
    seq_len = 40
    start = rng.normal(size=(len(features), seq_len)).round(1)  # rounding makes ties, which must agree too
    end = rng.normal(size=(len(features), seq_len)).round(1)
    kwargs = dict(version_2_with_negative=version_2, n_best_size=7, max_answer_length=6, null_score_diff_threshold=0.5)
    fast = postprocess_qa_predictions(examples, features, start, end, **kwargs)
    loop = plain_loop_postprocess(examples, features, start, end, **kwargs)
    assert compare_outputs(fast, loop) == []
    assert fast.predictions == loop.predictions and fast.null_odds == loop.null_odds
    assert any(fast.predictions.values()) and any(len(entries) > 2 for entries in fast.nbest.values())


@pytest.mark.parametrize("width,k", [(40, 7), (5, 5), (3, 7), (40, 0)])
def test_top_k_indices_is_a_stable_descending_sort(width, k):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, width)).round(1).astype(np.float32)  # many ties
    values[3, :] = 0.0  # a row of equal values
    values[4, ::2] = -np.inf
    expected = np.argsort(-values, axis=1, kind="stable")[:, :k]
    assert np.array_equal(top_k_indices(values, k), expected)
    values[5, 1] = np.nan  # NaN ranks lowest
    assert np.array_equal(top_k_indices(values, k), np.argsort(-values, axis=1, kind="stable")[:, :k])


@pytest.mark.slow
def test_span_loss_is_the_models_loss_at_weight_1_and_weighs_no_answer_windows(tiny_qa_model):
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_qa_model)
    torch.manual_seed(0)
    input_ids = torch.randint(5, 50, (4, 12))
    starts, ends = torch.tensor([0, 3, 0, 5]), torch.tensor([0, 4, 0, 12])  # windows 0, 2: no answer; 3: end cut
    output = model(input_ids=input_ids, start_positions=starts, end_positions=ends)
    assert torch.allclose(span_loss(output.start_logits, output.end_logits, starts, ends), output.loss)

    def cross_entropy(logits, target):
        return -torch.log_softmax(logits, dim=-1)[target].item()

    start_losses = [cross_entropy(output.start_logits[i], starts[i]) for i in range(4)]
    end_losses = [cross_entropy(output.end_logits[i], ends[i]) for i in range(3)]  # 12 lies past the window
    weights = [3.0, 1.0, 3.0, 1.0]
    expected_start = sum(w * loss for w, loss in zip(weights, start_losses)) / sum(weights)
    expected_end = sum(w * loss for w, loss in zip(weights, end_losses)) / sum(weights[:3])
    weighted = span_loss(output.start_logits, output.end_logits, starts, ends, no_answer_weight=3.0)
    assert weighted.item() == pytest.approx((expected_start + expected_end) / 2, rel=1e-5)
    assert weighted.item() != pytest.approx(output.loss.item(), rel=1e-3)


@pytest.mark.slow
def test_windows_longest_first_give_the_same_answers(tokenizer):
    """Evaluation windows come longest first (batches pad little); each window's logits travel with it, so the
    answers, null odds and n-best lists are those of the questions' order."""
    from qa_transfer.qa.windows import longest_first

    rng = np.random.default_rng(3)
    words = ["the", "old", "tower", "stands", "on", "north", "bank", "of", "river", "museum", "was", "built"]
    records = [qa_record(f"q{i}", " ".join(rng.choice(words, size=4)) + " ?",
                         " ".join(rng.choice(words, size=int(rng.integers(3, 80))))) for i in range(30)]
    examples = examples_of(records)
    config = WindowConfig(max_seq_length=40, doc_stride=10, max_query_length=10)
    features = build_windows(examples, tokenizer, config, with_labels=False, with_postprocess_columns=True)
    sorted_features = longest_first(features)
    lengths = [len(ids) for ids in sorted_features["input_ids"]]
    assert lengths == sorted(lengths, reverse=True) and len(set(lengths)) > 3
    assert [len(ids) for ids in features["input_ids"]] != lengths  # the test reorders something
    # the same logits per window, found by its content, in either order
    start_of, end_of = {}, {}
    for ids, offsets in zip(features["input_ids"], features["offset_mapping"]):
        key = (tuple(ids), str(offsets))
        start_of[key], end_of[key] = rng.normal(size=40).round(1), rng.normal(size=40).round(1)

    def logits(windows):
        keys = [(tuple(ids), str(offsets)) for ids, offsets in zip(windows["input_ids"], windows["offset_mapping"])]
        return np.stack([start_of[k] for k in keys]), np.stack([end_of[k] for k in keys])

    kwargs = dict(version_2_with_negative=True, n_best_size=5, max_answer_length=6)
    plain = postprocess_qa_predictions(examples, features, *logits(features), **kwargs)
    longest = postprocess_qa_predictions(examples, sorted_features, *logits(sorted_features), **kwargs)
    assert plain.predictions == longest.predictions and plain.null_odds == longest.null_odds
    assert compare_outputs(plain, longest) == []
    padded = build_windows(examples, tokenizer, WindowConfig(40, 10, 10, pad_to_max_length=True),
                           with_labels=False, with_postprocess_columns=True)
    assert longest_first(padded) is padded  # one length: nothing to reorder
