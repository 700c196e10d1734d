"""Benchmark: the time TriviaQA's conversion spends per evidence document building its context the paper's way
(NLTK Punkt sentences, `nltk.word_tokenize`, first 800 tokens), on one core, and what that makes for the
Wikipedia splits (about 14,229 dev and 110,648 train question-document pairs, per the TriviaQA paper).

The document is EVIDENCE below (two paragraphs in the style of a Wikipedia evidence file, with the abbreviations,
initials and quotes that Punkt and word_tokenize must handle) repeated to about 25,000 characters, so that the 800
tokens span many sentences and paragraphs as in a Wikipedia article.

    python bench/bench_triviaqa_context.py [--documents 200]

Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

EVIDENCE = (
    "Abbey Road is the eleventh studio album by the English rock band the Beatles, released on 26 September 1969 "
    "by Apple Records. It was recorded at EMI Studios in London, England (now \"Abbey Road Studios\"). Mr. Martin "
    "produced it; Sgt. Pepper's Lonely Hearts Club Band had come out in 1967.\n"
    "\n"
    "The album's cover, shot by Iain Macmillan, shows the group on a zebra crossing. It sold 4 million copies in the "
    "U.S. by 1980.\n"
)
SPLIT_DOCUMENTS = {"dev": 14_229, "train": 110_648}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=200, help="documents to time")
    args = parser.parse_args()
    from qa_transfer.sources.triviaqa import converted_context

    document = EVIDENCE * (25_000 // len(EVIDENCE) + 1)
    context = converted_context(document)  # loads the Punkt model, outside the timing
    started = time.process_time()
    for _ in range(args.documents):
        converted_context(document)
    per_document = (time.process_time() - started) / args.documents
    print(f"document: {len(document)} characters; context: {len(context.split(' '))} tokens, {len(context)} characters")
    print(f"CPU time per document: {per_document * 1000:.1f} ms ({args.documents} documents)")
    for split, count in SPLIT_DOCUMENTS.items():
        print(f"  {split}: {count} documents -> about {count * per_document / 60:.0f} min on one core "
              "(once: the result is cached)")


if __name__ == "__main__":
    main()
