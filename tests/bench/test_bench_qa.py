"""bench/bench_qa.py's `abstain` training set, prepared from small pool / mix / genuine-dev files written here."""

import json
from collections import Counter
from pathlib import Path

import bench_qa
import pytest
from shared import qa_record, write_jsonl


def record(record_id: str, title: str, context: str, question: str, answer: str | None) -> dict:
    return qa_record(record_id, question, context, answer, title=title)


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """A pool of 3 train articles (12 answerable, 4 unanswerable), a mix of 1 of those train articles and 2 dev
    articles (4 answerable, 4 unanswerable of its own) and a 1-article genuine dev subset."""
    pool, mix = [], []
    for a in range(3):
        context = f"Article {a} was written in the year 19{a}0 by the river."
        for q in range(4):
            pool.append(record(f"p{a}{q}", f"Train{a}", context, f"When was article {a} written, take {q}?", f"19{a}0"))
        pool.append(record(f"p{a}u", f"Train{a}", context, f"Who painted article {a}?", None))
    pool.append(record("p3u", "Train2", "Nothing here speaks of painters at all.", "Who painted it?", None))
    mix.append(dict(pool[0]))  # the mix's train articles are also in the pool: kept once
    for d in range(2):
        context = f"Dev article {d} names the city of Town{d} twice: Town{d}."
        for q in range(2):
            mix.append(record(f"d{d}{q}", f"Dev{d}", context, f"Which city, take {q}?", f"Town{d}"))
            mix.append(record(f"d{d}u{q}", f"Dev{d}", context, f"Which village, take {q}?", None))
    genuine = [record("g0", "Genuine", "The genuine article holds the answer 42.", "What is the answer?", "42")]
    monkeypatch.setattr(bench_qa, "POOL", str(write_jsonl(tmp_path / "pool.jsonl", pool)))
    monkeypatch.setattr(bench_qa, "MIX", str(write_jsonl(tmp_path / "mix.jsonl", mix)))
    monkeypatch.setattr(bench_qa, "GENUINE_DEV", str(write_jsonl(tmp_path / "genuine.jsonl", genuine)))
    return tmp_path


def read_prepared(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_share_within_the_genuine_unanswerable_questions(sources):
    out = sources / "train.jsonl"
    counts = bench_qa.prepare_abstain_training(str(out), questions=10, unanswerable_share=0.4, seed=42)
    assert counts == {"questions": 10, "unanswerable": 4, "unanswerable_repeated": 0,
                      "answerable_from_dev15": 4, "answerable_from_pool": 2, "answerable_from_pool_paired": 2}
    records = read_prepared(out)
    assert len(records) == 10 and len({r["id"] for r in records}) == 10
    assert sum(not r["answers"]["text"] for r in records) == 4
    # Every answerable question of the dev articles comes first; the pool tops up.
    assert {r["id"] for r in records if r["title"].startswith("Dev") and r["answers"]["text"]} == \
        {"d00", "d01", "d10", "d11"}
    bench_qa.prepare_abstain_training(str(sources / "again.jsonl"), questions=10, unanswerable_share=0.4, seed=42)
    assert (sources / "again.jsonl").read_text() == out.read_text()  # seeded: the same file


def test_a_share_past_the_genuine_questions_repeats_some_once_under_new_ids(sources):
    out = sources / "train.jsonl"
    counts = bench_qa.prepare_abstain_training(str(out), questions=20, unanswerable_share=0.55, seed=42)
    assert counts["unanswerable"] == 11 and counts["unanswerable_repeated"] == 3  # 8 genuine ones
    records = read_prepared(out)
    assert len({r["id"] for r in records}) == 20
    unanswerable = [r for r in records if not r["answers"]["text"]]
    assert len(unanswerable) == 11
    repeats = [r for r in unanswerable if r["id"].endswith("_repeat")]
    assert len(repeats) == 3
    asked = Counter((r["context"], r["question"]) for r in unanswerable)
    assert len(asked) == 8 and max(asked.values()) == 2  # every genuine one, none more than twice
    assert all(asked[(r["context"], r["question"])] == 2 for r in repeats)


def test_more_than_twice_the_genuine_questions_is_refused(sources):
    with pytest.raises(ValueError, match="need 17 unanswerable ones; there are 8, each usable twice at most"):
        bench_qa.prepare_abstain_training(str(sources / "train.jsonl"), questions=20, unanswerable_share=0.85, seed=42)
    assert not (sources / "train.jsonl").exists()


def test_more_answerable_questions_than_there_are_is_refused(sources):
    with pytest.raises(ValueError, match="need 17 answerable ones; there are 16"):
        bench_qa.prepare_abstain_training(str(sources / "train.jsonl"), questions=20, unanswerable_share=0.15, seed=42)
    assert not (sources / "train.jsonl").exists()


def test_a_training_question_from_an_evaluation_article_is_refused(sources, monkeypatch):
    leaking = [record("g0", "Train1", "Article 1 was written in the year 1910 by the river.", "When?", "1910")]
    monkeypatch.setattr(bench_qa, "GENUINE_DEV", str(write_jsonl(sources / "genuine.jsonl", leaking)))
    with pytest.raises(ValueError, match="come from the evaluation articles"):
        bench_qa.prepare_abstain_training(str(sources / "train.jsonl"), questions=20, unanswerable_share=0.4, seed=42)
    assert not (sources / "train.jsonl").exists()


def test_the_pool_tops_up_first_with_questions_on_the_unanswerable_ones_paragraphs(sources, monkeypatch):
    """10 pool paragraphs of 3 answerable questions, 2 of them also holding an unanswerable one: paired, the 6
    answerable questions the pool adds are those 2 paragraphs' own; at random (runs 4-10), from any paragraph."""
    pool = []
    for a in range(10):
        context = f"Paragraph {a} says the bridge opened in 18{a}5."
        pool += [record(f"p{a}{q}", f"Train{a}", context, f"When did bridge {a} open, take {q}?", f"18{a}5")
                 for q in range(3)]
        if a < 2:
            pool.append(record(f"p{a}u", f"Train{a}", context, f"Who closed bridge {a}?", None))
    mix = [record("d0", "Dev0", "Dev paragraph names Town0.", "Which town?", "Town0"),
           record("d0u", "Dev0", "Dev paragraph names Town0.", "Which village?", None)]
    monkeypatch.setattr(bench_qa, "POOL", str(write_jsonl(sources / "pool10.jsonl", pool)))
    monkeypatch.setattr(bench_qa, "MIX", str(write_jsonl(sources / "mix1.jsonl", mix)))

    paired = sources / "paired.jsonl"
    counts = bench_qa.prepare_abstain_training(str(paired), questions=10, unanswerable_share=0.3, seed=42)
    assert counts["unanswerable"] == 3 and counts["answerable_from_pool"] == 6
    assert counts["answerable_from_pool_paired"] == 6
    pool_answerable = [r for r in read_prepared(paired) if r["title"].startswith("Train") and r["answers"]["text"]]
    assert sorted(r["id"] for r in pool_answerable) == ["p00", "p01", "p02", "p10", "p11", "p12"]

    at_random = sources / "random.jsonl"
    counts = bench_qa.prepare_abstain_training(str(at_random), questions=10, unanswerable_share=0.3, seed=42,
                                               topup="random")
    assert counts["answerable_from_pool"] == 6 and counts["answerable_from_pool_paired"] < 6
    titles = {r["title"] for r in read_prepared(at_random) if r["answers"]["text"]}
    assert titles - {"Dev0", "Train0", "Train1"}  # drawn from other paragraphs too

    with pytest.raises(ValueError, match="topup must be 'paired' or 'random', not 'nearest'"):
        bench_qa.prepare_abstain_training(str(sources / "bad.jsonl"), questions=10, unanswerable_share=0.3, seed=42,
                                          topup="nearest")
    assert not (sources / "bad.jsonl").exists()
