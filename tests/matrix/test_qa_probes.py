"""The robustness probes of matrix/probes.py on fixtures: answers stay aligned, nothing else changes, the same seed
gives the same output and another seed another one; and run_qa.py's random labels."""

import json
from collections import Counter

import pytest
from datasets import Dataset
from harness import run_script_main
from shared import REPO, SMALL_WINDOWS, answers_aligned

import run_qa
from qa_transfer.core.errors import ArgumentError, ProbeError
from qa_transfer.matrix.probes import FILLER_WORDS, apply_probe, parse_probe, randomize_answers, sentence_spans
from qa_transfer.qa.data import FLAT_FEATURES, load_qa_file

SAMPLE = REPO / "examples" / "qa_sample"
EVALUATION_PROBES = ["shuffled_context", "question_prefix:3", "no_question", "filler", "filler:really", "negation"]

CONTEXT = (
    "The bridge was built in 1901 by Mr. J. Smith. It crosses the river at its widest point! "
    "Who paid for it? The city did, with help from the U.S. Army. Tolls ended in 1950. "
    "\"It was a bargain,\" said the mayor. Today 20,000 cars cross it each day."
)
RECORDS = [
    {"id": "q1", "title": "Bridge", "context": CONTEXT, "question": "When was the bridge built?",
     "answers": {"text": ["1901"], "answer_start": [CONTEXT.index("1901")]}},
    # Two answers in different sentences, one of them spanning a sentence end.
    {"id": "q2", "title": "Bridge", "context": CONTEXT, "question": "Who paid for the bridge?",
     "answers": {"text": ["The city did", "Who paid for it? The city"],
                 "answer_start": [CONTEXT.index("The city did"), CONTEXT.index("Who paid")]}},
    {"id": "q3", "title": "Bridge", "context": CONTEXT, "question": "Which mayor opened the tunnel?",
     "answers": {"text": [], "answer_start": []}},
    {"id": "q4", "title": "Bridge", "context": CONTEXT, "question": "Which army helped the city?",
     "answers": {"text": ["the U.S. Army"], "answer_start": [CONTEXT.index("the U.S. Army")]}},
    {"id": "q5", "title": "Bridge", "context": CONTEXT, "question": "  How many cars does it carry each day?",
     "answers": {"text": ["20,000"], "answer_start": [CONTEXT.index("20,000")]}},
]


@pytest.fixture(scope="module")
def fixtures() -> Dataset:
    """Our records above and the 14 questions of the shipped QA sample (a third unanswerable)."""
    sample = load_qa_file(SAMPLE / "dev.json").to_list()
    return Dataset.from_list(RECORDS + sample, features=FLAT_FEATURES)


def by_id(dataset: Dataset) -> dict[str, dict]:
    return {record["id"]: record for record in dataset}


@pytest.mark.parametrize("probe", EVALUATION_PROBES)
def test_answers_stay_aligned_and_the_same_seed_gives_the_same_set(fixtures, probe):
    probed = apply_probe(fixtures, probe, seed=1)
    assert probed.features == fixtures.features
    assert all(answers_aligned(record) for record in probed)
    assert probed.to_list() == apply_probe(fixtures, probe, seed=1).to_list()
    original = by_id(fixtures)
    for record in probed:
        before = original[record["id"]]
        assert record["title"] == before["title"]
        if probe != "negation":
            assert sorted(record["answers"]["text"]) == sorted(before["answers"]["text"])
    if probe != "negation":
        assert [r["id"] for r in probed] == [r["id"] for r in fixtures]


@pytest.mark.parametrize("probe", ["shuffled_context", "filler"])
def test_another_seed_gives_another_set(fixtures, probe):
    assert apply_probe(fixtures, probe, seed=1).to_list() != apply_probe(fixtures, probe, seed=2).to_list()


def test_the_probes_do_not_depend_on_which_other_records_come_along(fixtures):
    whole = by_id(apply_probe(fixtures, "shuffled_context", seed=3))
    part = apply_probe(fixtures.select([4, 0]), "shuffled_context", seed=3)
    assert all(record == whole[record["id"]] for record in part)


def test_shuffled_context_reorders_whole_sentences_and_keeps_an_answer_that_spans_two_together(fixtures):
    probed = by_id(apply_probe(Dataset.from_list(RECORDS, features=FLAT_FEATURES), "shuffled_context", seed=0))
    sentences = Counter(CONTEXT[begin:end] for begin, end in sentence_spans(CONTEXT))
    assert len(sentences) == 7
    for record in probed.values():
        assert record["question"] == next(r["question"] for r in RECORDS if r["id"] == record["id"])
        assert len(record["context"]) == len(CONTEXT)  # single spaces between sentences, as in the fixture
        assert all(sentence in record["context"] for sentence in sentences)
    shuffled = probed["q1"]["context"]
    assert shuffled != CONTEXT and sorted(shuffled.split()) == sorted(CONTEXT.split())
    assert all(sentence in shuffled for sentence in sentences)
    assert "Who paid for it? The city did, with help from the U.S. Army." in probed["q2"]["context"]
    assert probed["q3"]["answers"] == {"text": [], "answer_start": []}


@pytest.mark.parametrize("answer", [" It crosses", "1901 by Mr. J. Smith. ", "widest point! \nWho", "  ", "1950."])
def test_shuffled_context_keeps_answers_that_take_in_the_whitespace_between_sentences(answer):
    context = CONTEXT.replace("point! Who", "point! \nWho").replace("1950. ", "1950.  ")
    record = {"id": "w", "title": "Bridge", "context": context, "question": "What does it cross?",
              "answers": {"text": [answer], "answer_start": [context.index(answer)]}}
    shuffled = [apply_probe(Dataset.from_list([record], features=FLAT_FEATURES), "shuffled_context", seed)[0]
                for seed in range(5)]
    assert len({r["context"] for r in shuffled}) > 1
    for probed in shuffled:
        assert answers_aligned(probed) and probed["answers"]["text"] == [answer]
        assert sorted(probed["context"].split()) == sorted(context.split())
        assert {k: v for k, v in probed.items() if k not in ("context", "answers")} == \
            {k: v for k, v in record.items() if k not in ("context", "answers")}


def test_sentences_do_not_end_at_abbreviations_initials_or_lowercase_words():
    text = "Dr. Who met J. Smith in the U.S. in 1990. Then e.g. things. happened!  Was it 5 p.m.? Yes"
    assert [text[b:e] for b, e in sentence_spans(text)] == [
        "Dr. Who met J. Smith in the U.S. in 1990.", "Then e.g. things. happened!", "Was it 5 p.m.?", "Yes"]


def test_question_prefix_keeps_the_first_words_and_no_question_leaves_it_out(fixtures):
    original = by_id(fixtures)
    for probe, expected in (("question_prefix:3", lambda q: " ".join(q.split()[:3])), ("no_question", lambda q: "")):
        for record in apply_probe(fixtures, probe, seed=0):
            before = original[record["id"]]
            assert record["question"] == expected(before["question"])
            assert {k: v for k, v in record.items() if k != "question"} == \
                {k: v for k, v in before.items() if k != "question"}
    assert by_id(apply_probe(fixtures, "question_prefix:3", seed=0))["q5"]["question"] == "How many cars"


def test_filler_adds_one_filler_word_before_the_first_auxiliary_verb(fixtures):
    original = by_id(fixtures)
    probed = by_id(apply_probe(fixtures, "filler", seed=0))
    for qid, record in probed.items():
        before_words, after_words = original[qid]["question"].split(), record["question"].split()
        added = Counter(after_words) - Counter(before_words)
        assert len(after_words) == len(before_words) + 1 and sum(added.values()) == 1
        assert next(iter(added)) in FILLER_WORDS
        assert {k: v for k, v in record.items() if k != "question"} == \
            {k: v for k, v in original[qid].items() if k != "question"}
    fillers = {word for qid, record in probed.items()
               for word in Counter(record["question"].split()) - Counter(original[qid]["question"].split())}
    assert len(fillers) >= 2, "the filler word is drawn per question"
    really = by_id(apply_probe(fixtures, "filler:really", seed=0))
    assert really["q1"]["question"] == "When really was the bridge built?"
    assert really["q4"]["question"] == "Which really army helped the city?"  # no auxiliary verb: after the first word
    assert really["q5"]["question"] == "How many cars really does it carry each day?"


def test_negation_makes_answerable_questions_unanswerable_and_leaves_the_others_out(fixtures):
    probed = by_id(apply_probe(fixtures, "negation", seed=0))
    original = by_id(fixtures)
    assert probed["q1"]["question"] == "When wasn't the bridge built?"
    assert probed["q5"]["question"] == "How many cars doesn't it carry each day?"
    assert "q3" not in probed, "unanswerable already"
    assert "q4" not in probed and "q2" not in probed, "no auxiliary verb to negate"
    for qid, record in probed.items():
        assert original[qid]["answers"]["text"] and record["answers"] == {"text": [], "answer_start": []}
        assert record["context"] == original[qid]["context"]
        assert ("n't" in record["question"]) or (" not " in record["question"])


@pytest.mark.parametrize("spec, message", [
    ("scrambled", "unknown probe 'scrambled'"), ("question_prefix:x", "takes a number of words"),
    ("question_prefix:0", "at least one word"), ("filler:two words", "one word"), ("negation:3", "unknown probe"),
])
def test_bad_probe_names_are_errors(spec, message):
    with pytest.raises(ProbeError, match=message):
        parse_probe(spec)


def test_random_labels_replace_a_seeded_fraction_of_answers_by_spans_of_the_same_length(fixtures):
    relabelled, changed = randomize_answers(fixtures, 0.5, seed=4)
    answerable = [record for record in fixtures if record["answers"]["text"]]
    assert changed == round(len(answerable) / 2)
    original = by_id(fixtures)
    differing = 0
    for record in relabelled:
        before = original[record["id"]]
        assert answers_aligned(record)
        assert {k: v for k, v in record.items() if k != "answers"} == \
            {k: v for k, v in before.items() if k != "answers"}
        if not before["answers"]["text"]:
            assert record["answers"] == before["answers"]
        elif record["answers"] != before["answers"]:
            differing += 1
            assert len(record["answers"]["text"]) == 1
            assert len(record["answers"]["text"][0].split()) == len(before["answers"]["text"][0].split())
    assert differing >= changed - 1  # a random span may, rarely, be the answer itself
    assert relabelled.to_list() == randomize_answers(fixtures, 0.5, seed=4)[0].to_list()
    assert relabelled.to_list() != randomize_answers(fixtures, 0.5, seed=5)[0].to_list()
    assert randomize_answers(fixtures, 0.0, seed=4) == (fixtures, 0)
    everything, count = randomize_answers(fixtures, 1.0, seed=4)
    assert count == len(answerable) and all(answers_aligned(record) for record in everything)
    with pytest.raises(ValueError, match="random_label_fraction"):
        randomize_answers(fixtures, 1.5, seed=4)


@pytest.mark.slow
def test_run_qa_trains_on_random_labels(tiny_qa_model, tmp_path, caplog):
    out = tmp_path / "random_labels"
    with caplog.at_level("INFO", logger="qa_transfer.run_qa"):
        run_script_main(run_qa, [
            "--model_name_or_path", tiny_qa_model, "--train_file", SAMPLE / "train.json",
            "--do_train", "--max_steps", "1", "--per_device_train_batch_size", "4", "--output_dir", out,
            *SMALL_WINDOWS, "--random_label_fraction", "0.5", "--log_level", "info"])
    answerable = sum(1 for texts in load_qa_file(SAMPLE / "train.json")["answers"]["text"] if texts)
    assert f"random labels: {round(answerable / 2)} training questions answered by a random span" in caplog.text
    info = json.loads((out / run_qa.RUN_INFO_FILE).read_text())
    assert info["data_args"]["random_label_fraction"] == 0.5
    with pytest.raises(ArgumentError, match=r"--random_label_fraction must be in \[0, 1\], got 2"):
        run_script_main(run_qa, ["--model_name_or_path", tiny_qa_model, "--output_dir", out,
                                 "--random_label_fraction", "2"], tiny=False)
